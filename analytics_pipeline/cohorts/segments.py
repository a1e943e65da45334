"""user_cohort_segments: the retention triangle of user_cohorts by plan of the first subscription
(`first_plan`) and by signup source (`source`), monthly partitions as user_cohorts, run after it in
user_cohorts_job.

It reads the cohort state as user_cohorts' run left it (it absorbs nothing itself, so that both
describe the same users), and the segment state the revenue domain keeps: subscription_events'
plan_id and customer_sources. Definitions: docs/metrics.md#user_cohort_segments. The SQL is
sql/aggregate.sql (shared with user_cohorts) and sql/checks/.
"""

import dagster as dg
from sqlalchemy.engine import Connection

from ..aggregation.assets import aggregate_asset
from ..aggregation.bounds import COUNT_BOUND, MONEY_BOUND, ComputedRows
from ..aggregation.checks import check_specs, rule_checks
from ..aggregation.partitions import monthly_partitions
from ..aggregation.runs import Aggregate, lock_aggregate, run_aggregate
from ..core import schema
from ..core.cache_versions import CacheInvalidation
from ..core.resources import AnalyticsDatabase
from ..core.sql import sql_loader
from .assets import AGGREGATE, FRESHNESS, user_cohorts
from .checks import MALFORMED_EVENTS_DESCRIPTION, malformed_events
from .triangle import compute_triangle_rows, delete_and_insert, month_rows_sql, prepare_triangle_checks

load = sql_loader(__package__)

SEGMENTS_AGGREGATE = "user_cohort_segments"
DIMENSIONS = ("first_plan", "source")
# The segment state, absorbed by the revenue domain's assets of these names (analytics_pipeline/revenue/).
SEGMENT_STATE_ASSETS = (dg.AssetKey("subscription_history"), dg.AssetKey("customer_sources"))
# The retention rate is a fraction: NUMERIC(5,4) holds below 10.
FRACTION_BOUND = 10

VALUES_ADD_UP_TO_USER_COHORTS_CHECK = "values_add_up_to_user_cohorts"
RETENTION_RATE_BETWEEN_0_AND_1_CHECK = "retention_rate_between_0_and_1"
SEGMENT_CHECKS = rule_checks(
    load,
    {
        VALUES_ADD_UP_TO_USER_COHORTS_CHECK: (
            "For every written month and each dimension, the values' cohort_size, retained_users and revenue "
            "add up to the user_cohorts row of the same tenant, cohort and month."
        ),
        RETENTION_RATE_BETWEEN_0_AND_1_CHECK: (
            "retention_rate is a fraction within 0..1, retained_users never exceeds cohort_size and no size, "
            "count or amount is negative."
        ),
    },
)
SEGMENT_CHECK_SPECS = check_specs(schema.user_cohort_segments.name, SEGMENT_CHECKS, MALFORMED_EVENTS_DESCRIPTION)

def compute_segment_rows(conn: Connection, params: dict) -> None:
    """The rows describing a calendar month of [window_start, window_end), from the state tables,
    into cohort_segment_rows. Under user_cohorts' lock, so that a run of it in flight commits first
    and none starts meanwhile: the rows of both tables come from the same cohort state (their
    identity is the check `values_add_up_to_user_cohorts`)."""
    lock_aggregate(conn, AGGREGATE)
    compute_triangle_rows(conn, params, "cohort_segment_rows", DIMENSIONS)


SEGMENT_ROWS = ComputedRows(
    "cohort_segment_rows",
    "'cohort ' || to_char(r.cohort_month, 'YYYY-MM') || ' month ' || r.month_number || ' ' || r.dimension "
    "|| ' ' || r.value",
    (
        ("cohort_size", "r.cohort_size", COUNT_BOUND),
        ("retained_users", "r.retained_users", COUNT_BOUND),
        ("retention_rate", "r.retention_rate", FRACTION_BOUND),
        ("revenue", "r.revenue", MONEY_BOUND),
        ("ltv", "r.ltv", MONEY_BOUND),
    ),
)


def write_user_cohort_segments(conn: Connection, params: dict) -> dict[str, object]:
    """Replace every row describing a calendar month of [window_start, window_end) with the
    computed ones."""
    return delete_and_insert(conn, params, schema.user_cohort_segments, "insert_segment_rows")


def prepare_segment_checks(conn: Connection, params: dict) -> None:
    """The rows the run wrote, which the rule checks read: touched_rows.sql."""
    prepare_triangle_checks(conn, params, schema.user_cohort_segments)


USER_COHORT_SEGMENTS_AGGREGATE = Aggregate(
    name=SEGMENTS_AGGREGATE,
    absorbs=(),
    compute=compute_segment_rows,
    computed=(SEGMENT_ROWS,),
    write=write_user_cohort_segments,
    malformed=malformed_events,
    checks=SEGMENT_CHECKS,
    prepare_checks=prepare_segment_checks,
    **month_rows_sql(schema.user_cohort_segments),
)


@aggregate_asset(
    schema.user_cohort_segments,
    partitions_def=monthly_partitions,
    deps=[user_cohorts, *SEGMENT_STATE_ASSETS],
    check_specs=SEGMENT_CHECK_SPECS,
    freshness=FRESHNESS,
)
def user_cohort_segments(
    context: dg.AssetExecutionContext, database: AnalyticsDatabase, cache: CacheInvalidation
) -> dg.MaterializeResult:
    """The retention triangle of user_cohorts by segment.

    Row (cohort_month, month_number, dimension, value): the cohort's users whose value in the
    dimension is `value` (`first_plan`: the plan their first subscription_started names; `source`:
    the source of their first user_signup; `(none)` where there is none), with cohort_size,
    retained_users, retention_rate (a fraction), revenue and ltv as user_cohorts defines them. For
    each dimension the values add up to user_cohorts (ERROR check). Definitions:
    docs/metrics.md#user_cohort_segments.

    Partition M writes every row whose month is M, in one transaction, from the state tables as
    user_cohorts' run in the same job left them; any month can be recomputed at any time.
    """
    return run_aggregate(context, database, cache, USER_COHORT_SEGMENTS_AGGREGATE)
