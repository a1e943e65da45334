"""user_cohort_segments: the retention triangle of user_cohorts by plan of the first subscription
(`first_plan`) and by signup source (`source`), monthly partitions as user_cohorts, run after it in
user_cohorts_job.

It reads the cohort state as the absorbs left it (it absorbs nothing itself), and the segment
state the revenue domain keeps: subscription_events' plan_id and customer_sources; where
user_cohorts' rows of its window lag behind that cohort state, it brings them up to it, so that
both tables describe the same users. Definitions: docs/metrics.md#user_cohort_segments. The SQL is
sql/aggregate.sql (shared with user_cohorts) and sql/checks/.
"""

import dataclasses
import functools

import dagster as dg
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..aggregation import state
from ..aggregation.assets import aggregate_asset
from ..aggregation.bounds import COUNT_BOUND, MONEY_BOUND, ComputedRows, no_tenants_held_back
from ..aggregation.checks import check_specs, rule_checks
from ..aggregation.partitions import monthly_partitions
from ..aggregation.runs import Aggregate, lock_aggregate, recompute_window, run_aggregate
from ..core import schema
from ..core.cache_versions import CacheInvalidation
from ..core.resources import AnalyticsDatabase
from ..core.sql import load_sql
from .assets import ACTIVITY_STATE, AGGREGATE, FRESHNESS, SIGNUPS_STATE, USER_COHORTS_AGGREGATE, user_cohorts
from .checks import MALFORMED_EVENTS_DESCRIPTION, malformed_events
from .triangle import compute_triangle_rows, delete_and_insert, month_rows_sql, prepare_triangle_checks

SEGMENTS_AGGREGATE = "user_cohort_segments"
# The run's metadata: tenants whose user_cohorts rows it brought up to the state it read.
USER_COHORTS_BROUGHT_UP_TO_DATE = "user_cohorts_tenants_brought_up_to_date"
DIMENSIONS = ("first_plan", "source")
# The segment state, absorbed by the revenue domain's assets of these names (analytics_pipeline/revenue/).
SEGMENT_STATE_ASSETS = (dg.AssetKey("subscription_history"), dg.AssetKey("customer_sources"))
# The derived states the run reads (a state's name is its asset's), held in name order.
READ_STATES = tuple(sorted((SIGNUPS_STATE, ACTIVITY_STATE, *(key.path[-1] for key in SEGMENT_STATE_ASSETS))))


def load_segment_sql(name: str, segment_rows: str = "cohort_segment_touched_rows") -> str:
    """sql/<name>.sql; `segment_rows` the segment rows a check reads (those the run wrote)."""
    return load_sql(__package__, name).replace("{segment_rows}", segment_rows)


# The retention rate is a fraction: NUMERIC(5,4) holds below 10.
FRACTION_BOUND = 10

VALUES_ADD_UP_TO_USER_COHORTS_CHECK = "values_add_up_to_user_cohorts"
RETENTION_RATE_BETWEEN_0_AND_1_CHECK = "retention_rate_between_0_and_1"
SEGMENT_CHECKS = rule_checks(
    load_segment_sql,
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


def compute_segment_rows(conn: Connection, params: dict, cohorts_changed: set[str] | None = None) -> None:
    """The rows describing a calendar month of [window_start, window_end), from the state tables,
    into cohort_segment_rows; and user_cohorts' rows of the window brought up to the same state
    where they lag behind it (`cohorts_changed` gains the tenants whose rows that changed).

    The run does not absorb: under user_cohorts' lock, so that a run of it in flight commits first
    and none starts meanwhile, and holding the states, it reads one state from which both tables'
    rows of the window are computed (their identity is the check `values_add_up_to_user_cohorts`;
    docs/metrics.md#cohort-segments)."""
    lock_aggregate(conn, AGGREGATE)
    # The revenue domain's absorbs lock theirs in the same order; user_cohorts' absorbs, which lock
    # the cohort state in another, wait for its lock, which the run holds before these.
    state.hold(conn, *READ_STATES)
    compute_triangle_rows(conn, params, "cohort_segment_rows", DIMENSIONS)
    changed = bring_user_cohorts_up_to_date(conn, params)
    if cohorts_changed is not None:
        cohorts_changed |= changed


def bring_user_cohorts_up_to_date(conn: Connection, params: dict) -> frozenset[str]:
    """When the computed segment rows would not add up to user_cohorts' stored rows of the window
    (those rows were written before an absorb that changed the state: a late event read by a run
    of other months, or by a state asset's own absorb), recompute user_cohorts' window from the
    state as its own run would, without absorbing, and write it. Returns the tenants whose
    user_cohorts rows changed: none when they already added up, the usual case, which costs one
    comparison."""
    no_tenants_held_back(conn)
    breaks = load_segment_sql(f"checks/{VALUES_ADD_UP_TO_USER_COHORTS_CHECK}", "cohort_segment_rows")
    if conn.execute(sa.text(f"SELECT EXISTS ({breaks})"), params).scalar_one() is False:
        return frozenset()
    return recompute_window(conn, USER_COHORTS_AGGREGATE, params)


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
    the absorbs left them (user_cohorts' run in the same job, usually); any month can be recomputed
    at any time. Where user_cohorts' rows of the window lag behind that state (a late event
    absorbed by a run of other months), the run brings them up to it first, so the identity holds
    whichever of the two runs commits first (docs/metrics.md#cohort-segments).
    """
    cohorts_changed: set[str] = set()
    run = dataclasses.replace(
        USER_COHORT_SEGMENTS_AGGREGATE,
        compute=functools.partial(compute_segment_rows, cohorts_changed=cohorts_changed),
    )
    result = run_aggregate(context, database, cache, run)
    # Committed: the user_cohorts rows the run brought up to date are read anew too.
    cache.rows_changed(AGGREGATE, cohorts_changed, log=context.log)
    return dg.MaterializeResult(
        metadata={**(result.metadata or {}), USER_COHORTS_BROUGHT_UP_TO_DATE: len(cohorts_changed)},
        check_results=result.check_results,
    )
