"""The hourly schedule and the late-data sensor."""

from __future__ import annotations

import datetime as dt
import json

import dagster as dg
import pytest
import sqlalchemy as sa

from analytics_pipeline.revenue.assets import revenue_aggregates, subscription_history
from analytics_pipeline.definitions import defs
from analytics_pipeline.resources import AnalyticsDatabase
from analytics_pipeline.schedules import hourly_aggregates_schedule
from analytics_pipeline.late_data import late_events_sensor, merge_into_ranges

from .helpers import add_event, materialize_range, rows


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


def test_merge_into_ranges():
    d = dt.date
    days = {d(2025, 1, 1), d(2025, 1, 2), d(2025, 1, 3), d(2025, 1, 7), d(2025, 2, 1)}
    assert merge_into_ranges(days) == [
        (d(2025, 1, 1), d(2025, 1, 3)), (d(2025, 1, 7), d(2025, 1, 7)), (d(2025, 2, 1), d(2025, 2, 1))
    ]


def tick(db_url, cursor):
    context = dg.build_sensor_context(cursor=cursor, resources={"database": AnalyticsDatabase(url=db_url)})
    return late_events_sensor(context)


def cursor_at(moment: dt.datetime) -> str:
    return json.dumps({"created_through": moment.isoformat()})


def test_first_tick_starts_following_without_requests(db_url):
    result = tick(db_url, None)
    assert not result.run_requests
    assert json.loads(result.cursor)["created_through"]


def test_late_events_request_their_partitions_and_a_rerun_fixes_the_rows(engine, db_url, monkeypatch):
    monkeypatch.setenv("ANALYTICS_RETENTION_MONTHS", "240")
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    today = now.date()
    paid_day = today - dt.timedelta(days=10)
    sub_day = today - dt.timedelta(days=20)
    with engine.begin() as conn:
        add_event(conn, "t1", "payment_completed", f"{paid_day} 12:00", "c1", payment_id="a", amount=5,
                  created_at=now - dt.timedelta(hours=3))
    materialize_range([subscription_history, revenue_aggregates], db_url, str(sub_day), str(today),
                      selection=["revenue_aggregates"])
    with engine.begin() as conn:
        # Arrived after the materialization, 30 minutes ago, for days long closed.
        add_event(conn, "t1", "payment_completed", f"{paid_day} 13:00", "c1", payment_id="b", amount=7,
                  created_at=now - dt.timedelta(minutes=30))
        add_event(conn, "t2", "subscription_started", f"{sub_day} 08:00", "c9", subscription_id="s",
                  plan_id="p", amount=10, interval="month", created_at=now - dt.timedelta(minutes=30))
        # Not late: today's events belong to the hourly schedule.
        add_event(conn, "t1", "payment_completed", f"{today} 00:01", "c1", payment_id="c", amount=1,
                  created_at=now - dt.timedelta(minutes=30))
    result = tick(db_url, cursor_at(now - dt.timedelta(hours=1)))
    ranges = sorted((r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"])
                    for r in result.run_requests)
    # the subscription changes MRR from its day up to (not including) yesterday, which the
    # hourly schedule covers; the payment's day lies inside that range.
    assert ranges == [(str(sub_day), str(today - dt.timedelta(days=2)))]
    assert {tuple(r.asset_selection) for r in result.run_requests} == {(dg.AssetKey("revenue_aggregates"),)}
    assert len({r.run_key for r in result.run_requests}) == len(result.run_requests)

    start, end = ranges[0]
    materialize_range([subscription_history, revenue_aggregates], db_url, start, end, selection=["revenue_aggregates"])
    with engine.connect() as conn:
        assert rows(conn, "SELECT total_revenue FROM revenue_aggregates WHERE tenant_id='t1' AND period_type='day' "
                          "AND period_start=:d", d=paid_day) == [{"total_revenue": 12}]
        assert rows(conn, "SELECT mrr FROM revenue_aggregates WHERE tenant_id='t2' AND period_type='day' "
                          "AND period_start=:d", d=sub_day) == [{"mrr": 10}]

    # A second tick from the new cursor finds nothing new.
    again = tick(db_url, result.cursor)
    assert not again.run_requests


def test_a_late_payment_alone_requests_only_its_day(engine, db_url):
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    day = now.date() - dt.timedelta(days=6)
    with engine.begin() as conn:
        add_event(conn, "t1", "payment_refunded", f"{day} 12:00", "c1", payment_id="a", amount=5,
                  created_at=now - dt.timedelta(minutes=20))
        add_event(conn, "t1", "page_view", f"{day} 12:00", "c1", created_at=now - dt.timedelta(minutes=20))
    result = tick(db_url, cursor_at(now - dt.timedelta(hours=1)))
    assert [(r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"])
            for r in result.run_requests] == [(str(day), str(day))]


def test_a_late_completion_requests_the_day_its_tournament_belongs_to(engine, db_url):
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    created = now.date() - dt.timedelta(days=9)
    with engine.begin() as conn:
        add_event(conn, "t1", "tournament_created", f"{created} 10:00", "o1", tournament_id="T1",
                  format="swiss", created_at=now - dt.timedelta(days=9))
        add_event(conn, "t1", "tournament_completed", f"{now.date() - dt.timedelta(days=4)} 10:00", "o1",
                  tournament_id="T1", created_at=now - dt.timedelta(minutes=20))
    result = tick(db_url, cursor_at(now - dt.timedelta(hours=1)))
    requested = {(r.asset_selection[0].path[0], r.tags["dagster/asset_partition_range_start"],
                  r.tags["dagster/asset_partition_range_end"]) for r in result.run_requests}
    assert requested == {("tournament_aggregates", str(created), str(created))}


def test_hourly_job_covers_revenue_and_tournaments():
    job = defs.resolve_job_def("hourly_aggregates_job")
    assert {k.path[0] for k in job.asset_layer.selected_asset_keys} == {"revenue_aggregates", "tournament_aggregates"}
