"""The hourly schedule (the new-events sensor: test_new_events.py)."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from analytics_pipeline.aggregation.schedules import hourly_aggregates_schedule
from analytics_pipeline.definitions import defs


def test_hourly_schedule_requests_yesterday_and_today_in_one_run():
    context = dg.build_schedule_context(scheduled_execution_time=dt.datetime(2025, 3, 10, 5, 5, tzinfo=dt.UTC))
    request = hourly_aggregates_schedule(context)
    assert request.tags["dagster/asset_partition_range_start"] == "2025-03-09"
    assert request.tags["dagster/asset_partition_range_end"] == "2025-03-10"
    assert hourly_aggregates_schedule.cron_schedule == "5 * * * *"


def test_hourly_schedule_run_is_a_valid_partition_range_of_the_job():
    job = defs.resolve_job_def("hourly_aggregates_job")
    keys = job.partitions_def.get_partition_keys_in_range(dg.PartitionKeyRange("2025-03-09", "2025-03-10"))
    assert keys == ["2025-03-09", "2025-03-10"]


def test_hourly_job_covers_revenue_and_tournaments():
    job = defs.resolve_job_def("hourly_aggregates_job")
    assert {k.path[0] for k in job.asset_layer.selected_asset_keys} == {
        "revenue_aggregates", "revenue_segments", "tournament_aggregates"
    }
