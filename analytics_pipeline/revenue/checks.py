"""The checks of revenue_aggregates (docs/metrics.md#checks) and revenue_segments
(docs/metrics.md#segments), named as analytics_pipeline/aggregation/checks.py says; each rule's
SQL is sql/checks/<name>.sql, sql/segments/checks/<name>.sql for revenue_segments."""

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..aggregation.checks import check_specs, rule_checks
from ..aggregation.periods import TOUCHED_PERIODS_SQL
from ..core.schema import revenue_aggregates as revenue_aggregates_table
from ..core.schema import revenue_segments as revenue_segments_table
from ..core.sql import sql_loader

load = sql_loader(__package__)

MRR_BRIDGE_CHECK = "mrr_bridge"
CUSTOMER_BRIDGE_CHECK = "customer_bridge"
NON_NEGATIVE_CHECK = "non_negative"
PAYMENT_SUCCESS_WITHIN_ATTEMPTS_CHECK = "payment_success_within_attempts"
ARR_IS_TWELVE_TIMES_MRR_CHECK = "arr_is_twelve_times_mrr"
PERIODS_SUM_THEIR_DAYS_CHECK = "periods_sum_their_days"

RULE_CHECKS = rule_checks(
    load,
    {
        MRR_BRIDGE_CHECK: (
            "MRR at the end minus MRR before the period equals new + reactivation + expansion - contraction - churned."
        ),
        CUSTOMER_BRIDGE_CHECK: (
            "Active customers at the end minus those before the period equal new + reactivated - churned customers."
        ),
        NON_NEGATIVE_CHECK: "No negative amount or count.",
        PAYMENT_SUCCESS_WITHIN_ATTEMPTS_CHECK: "Successful payments never exceed payment attempts.",
        ARR_IS_TWELVE_TIMES_MRR_CHECK: "arr = mrr * 12.",
        PERIODS_SUM_THEIR_DAYS_CHECK: (
            "Week, month, quarter and year rows equal the sums of their day rows; mrr and active_customers "
            "are their last day's."
        ),
    },
)
MALFORMED_EVENTS_DESCRIPTION = (
    "Malformed payment and subscription events in the window (skipped; WARN with counts by tenant and type)."
)

# The asset is named after its table.
CHECK_SPECS = check_specs(revenue_aggregates_table.name, RULE_CHECKS, MALFORMED_EVENTS_DESCRIPTION)

# revenue_segments (docs/metrics.md#segments); each rule's SQL is sql/segments/checks/<name>.sql.
VALUES_ADD_UP_TO_REVENUE_AGGREGATES_CHECK = "values_add_up_to_revenue_aggregates"


def load_segment_sql(
    name: str, segment_rows: str = "revenue_segments", revenue_rows: str = "revenue_aggregates"
) -> str:
    """sql/segments/<name>.sql; `segment_rows` and `revenue_rows` the rows of revenue_segments and
    revenue_aggregates the identity reads (the stored ones; segments.py narrows them to some
    tenants)."""
    return (
        load(f"segments/{name}")
        .replace("{identity_breaks}", load("segments/identity_breaks"))
        .replace("{touched_periods}", TOUCHED_PERIODS_SQL)
        .replace("{segment_rows}", segment_rows)
        .replace("{revenue_rows}", revenue_rows)
    )


SEGMENT_RULE_CHECKS = rule_checks(
    load_segment_sql,
    {
        VALUES_ADD_UP_TO_REVENUE_AGGREGATES_CHECK: (
            "For every dimension (plan, interval, source), the values' rows add up to revenue_aggregates' row of "
            "the same tenant and period, column by column (MRR, ARR, the five movements, active, new, "
            "reactivated and churned customers), and what is transferred in equals what is transferred out. "
            "Names tenant, period, dimension and column."
        ),
        MRR_BRIDGE_CHECK: (
            "Per value: MRR at the end minus MRR before the period equals new + reactivation + expansion - "
            "contraction - churned + transferred in - transferred out."
        ),
        CUSTOMER_BRIDGE_CHECK: (
            "Per value: active customers at the end minus those before the period equal new + reactivated - "
            "churned + transferred in - transferred out."
        ),
        NON_NEGATIVE_CHECK: "No negative amount or count.",
    },
)
SEGMENT_MALFORMED_EVENTS_DESCRIPTION = (
    "Malformed subscription and signup events in the window (skipped; WARN with counts by tenant and type)."
)
SEGMENT_CHECK_SPECS = check_specs(revenue_segments_table.name, SEGMENT_RULE_CHECKS, SEGMENT_MALFORMED_EVENTS_DESCRIPTION)


def prepare_checks(conn: Connection, params: dict) -> None:
    """The rows of the window beside what the rule checks compare them with (check_rows.sql)."""
    conn.execute(sa.text(load("check_rows").replace("{touched_periods}", TOUCHED_PERIODS_SQL)), params)


def malformed_revenue_events(conn: Connection, params: dict) -> list:
    """(tenant_id, event_type, problem, events) of malformed events revenue_aggregates reads."""
    return conn.execute(sa.text(load("malformed")), params).all()


def prepare_segment_checks(conn: Connection, params: dict) -> None:
    """The segment rows of the window beside their opening MRR and customers (check_rows.sql)."""
    conn.execute(sa.text(load_segment_sql("check_rows")), params)
