"""The hourly aggregation schedule: today's and yesterday's partitions, in one run.

A daily-partitioned aggregate that the hourly schedule keeps current declares it by carrying the
`HOURLY` tags; the job selects its assets by them, so the schedule names no domain."""

import datetime as dt

import dagster as dg

from ..core.settings import start_date
from .partitions import partition_range_tags

CADENCE_TAG = "analytics/cadence"
# The asset tags of a daily-partitioned aggregate kept current by the hourly schedule.
HOURLY = {CADENCE_TAG: "hourly"}

hourly_aggregates_job = dg.define_asset_job(
    "hourly_aggregates_job",
    selection=dg.AssetSelection.tag(CADENCE_TAG, HOURLY[CADENCE_TAG]),
    description="Recompute day partitions (and the periods containing them) of the hourly aggregates.",
)


@dg.schedule(
    cron_schedule="5 * * * *",
    job=hourly_aggregates_job,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def hourly_aggregates_schedule(context: dg.ScheduleEvaluationContext):
    """Five minutes past every hour: yesterday (late events of the closing day) and today."""
    today = context.scheduled_execution_time.astimezone(dt.UTC).date()
    first = max(today - dt.timedelta(days=1), start_date())
    if today < first:
        return dg.SkipReason(f"partitions start on {start_date()}")
    return dg.RunRequest(
        run_key=context.scheduled_execution_time.isoformat(),
        tags=partition_range_tags(first, today),
    )


defs = dg.Definitions(jobs=[hourly_aggregates_job], schedules=[hourly_aggregates_schedule])
