"""What the cohorts domain declares: its assets and schedule, the states it absorbs, its
late-month finder."""

from ..declarations import Domain, LatePartitions
from .assets import (
    AGGREGATE,
    USER_ACTIVITY_MONTHS,
    USER_SIGNUPS,
    defs,
    first_scheduled_month,
    late_cohort_months,
    user_cohorts_job,
)

DOMAIN = Domain(
    name="cohorts",
    defs=defs,
    states=(USER_SIGNUPS, USER_ACTIVITY_MONTHS),
    # The daily schedule keeps the running month and the two before it current.
    late=(LatePartitions(AGGREGATE, user_cohorts_job, late_cohort_months,
                         before=first_scheduled_month, step="month"),),
)
