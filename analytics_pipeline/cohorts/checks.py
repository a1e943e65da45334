"""The checks of user_cohorts (docs/metrics.md#user_cohorts), named as
analytics_pipeline/aggregation/checks.py says; each rule's SQL is sql/checks/<name>.sql."""

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..aggregation.checks import check_specs, rule_checks
from ..core.schema import user_cohorts as user_cohorts_table
from ..core.sql import sql_loader
from .triangle import prepare_triangle_checks

load = sql_loader(__package__)

RETENTION_RATE_BETWEEN_0_AND_100_CHECK = "retention_rate_between_0_and_100"
RETAINED_USERS_AT_MOST_COHORT_SIZE_CHECK = "retained_users_at_most_cohort_size"
LTV_NEVER_DECREASES_CHECK = "ltv_never_decreases"
ROWS_MATCH_USER_STATE_CHECK = "rows_match_user_state"

RULE_CHECKS = rule_checks(
    load,
    {
        RETENTION_RATE_BETWEEN_0_AND_100_CHECK: (
            "retention_rate is within 0..100 and no size, count or amount is negative."
        ),
        RETAINED_USERS_AT_MOST_COHORT_SIZE_CHECK: "retained_users never exceeds cohort_size.",
        LTV_NEVER_DECREASES_CHECK: "Within a cohort, ltv never decreases from one month_number to the next.",
        ROWS_MATCH_USER_STATE_CHECK: (
            "Size, retained users, revenue and ltv of every written row equal those recomputed from "
            "user_signups and user_activity_months, with no row missing or extra."
        ),
    },
)
MALFORMED_EVENTS_DESCRIPTION = (
    "No malformed event happened in the window's months (WARN; counts by tenant and type). "
    "Malformed events are neither activity, signups nor revenue."
)

# The asset is named after its table.
CHECK_SPECS = check_specs(user_cohorts_table.name, RULE_CHECKS, MALFORMED_EVENTS_DESCRIPTION)


def prepare_checks(conn: Connection, params: dict) -> None:
    """The rows the run wrote (those describing a month of the window), which the rule checks
    read: touched_rows.sql."""
    prepare_triangle_checks(conn, params, user_cohorts_table)


def malformed_events(conn: Connection, params: dict) -> list:
    """(tenant_id, event_type, problem, events) of malformed events in the window."""
    return conn.execute(sa.text(load("malformed")), params).all()
