"""What the cohorts domain declares: its assets and schedule, the states it absorbs, its
touched-month finder, the aggregates it publishes."""

import dagster as dg

from ..aggregation.declarations import Domain, TouchedPartitions
from .assets import (
    AGGREGATE,
    FRESHNESS,
    USER_ACTIVITY_MONTHS,
    USER_SIGNUPS,
    touched_cohort_months,
    user_activity_months,
    user_cohorts,
    user_signups,
)
from .schedules import user_cohorts_daily, user_cohorts_job
from .segments import SEGMENTS_AGGREGATE, user_cohort_segments

defs = dg.Definitions(
    assets=[user_signups, user_activity_months, user_cohorts, user_cohort_segments],
    jobs=[user_cohorts_job],
    schedules=[user_cohorts_daily],
)

DOMAIN = Domain(
    name="cohorts",
    defs=defs,
    states=(USER_SIGNUPS, USER_ACTIVITY_MONTHS),
    touched=(TouchedPartitions(AGGREGATE, user_cohorts_job, touched_cohort_months, step="month"),),
    aggregates={AGGREGATE: FRESHNESS, SEGMENTS_AGGREGATE: FRESHNESS},
)
