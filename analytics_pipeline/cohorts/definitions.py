"""What the cohorts domain declares: its assets and schedule, the states it absorbs, its
touched-month finder, the aggregate it publishes."""

from ..aggregation.declarations import Domain, TouchedPartitions
from .assets import (
    AGGREGATE,
    FRESHNESS,
    USER_ACTIVITY_MONTHS,
    USER_SIGNUPS,
    defs,
    touched_cohort_months,
    user_cohorts_job,
)

DOMAIN = Domain(
    name="cohorts",
    defs=defs,
    states=(USER_SIGNUPS, USER_ACTIVITY_MONTHS),
    touched=(TouchedPartitions(AGGREGATE, user_cohorts_job, touched_cohort_months, step="month"),),
    aggregates={AGGREGATE: FRESHNESS},
)
