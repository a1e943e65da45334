"""The hourly aggregation schedule: today's and yesterday's partitions, in one run."""

import datetime as dt

import dagster as dg

from ..core.settings import start_date
from .partitions import partition_range_tags

# Daily-partitioned aggregates kept current by the hourly schedule and the new-events sensor.
HOURLY_AGGREGATES = ["revenue_aggregates", "tournament_aggregates"]

hourly_aggregates_job = dg.define_asset_job(
    "hourly_aggregates_job",
    selection=dg.AssetSelection.assets(*HOURLY_AGGREGATES),
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
