"""The cohorts' job and daily schedule: user_cohorts is monthly-partitioned, so the hourly schedule
(analytics_pipeline/aggregation/schedules.py) does not run it; this one keeps the recent months
current, and user_cohort_segments after them (docs/operations.md#freshness)."""

import datetime as dt

import dagster as dg

from ..aggregation.partitions import monthly_partitions, partition_range_tags
from ..core.months import add_months, month_start
from .assets import user_cohorts
from .segments import user_cohort_segments

# The daily schedule recalculates the running month and the two before it.
SCHEDULED_MONTHS = 3

user_cohorts_job = dg.define_asset_job(
    "user_cohorts_job",
    selection=[user_cohorts, user_cohort_segments],
    description="user_cohorts, then user_cohort_segments, for a range of months, in one run.",
)


def first_scheduled_month(today: dt.date) -> dt.date:
    """The oldest month the daily schedule recalculates on `today`."""
    return max(add_months(month_start(today), 1 - SCHEDULED_MONTHS), month_start(monthly_partitions.start.date()))


@dg.schedule(
    job=user_cohorts_job,
    cron_schedule="30 2 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def user_cohorts_daily(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Every day at 02:30 UTC, recalculate the running month and the two before it in one run."""
    today = context.scheduled_execution_time.astimezone(dt.UTC).date()
    return dg.RunRequest(
        run_key=context.scheduled_execution_time.isoformat(),
        tags=partition_range_tags(first_scheduled_month(today), month_start(today)),
    )
