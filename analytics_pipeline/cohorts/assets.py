"""Retention and revenue of signup cohorts: `user_signups` and `user_activity_months` (derived
state) and `user_cohorts` (monthly partitions by the month a row describes). The daily schedule
that keeps the recent months current is in schedules.py.

Definitions: docs/metrics.md#user_cohorts. The SQL is in sql/.
"""

import datetime as dt
import time

import dagster as dg
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..aggregation import state
from ..aggregation.assets import aggregate_asset, state_asset
from ..aggregation.bounds import COUNT_BOUND, MONEY_BOUND, RATE_BOUND, ComputedRows
from ..aggregation.declarations import ALL_EVENT_TYPES, DerivedState
from ..aggregation.freshness import DAILY_SCHEDULE
from ..aggregation.partitions import monthly_partitions
from ..aggregation.runs import Aggregate, collect_window, run_aggregate, tune_for_aggregation
from ..core import schema
from ..core.cache_versions import CacheInvalidation
from ..core.months import add_months
from ..core.resources import AnalyticsDatabase
from ..core.sql import sql_loader
from .checks import CHECK_SPECS, RULE_CHECKS, malformed_events, prepare_checks
from .triangle import compute_triangle_rows, delete_and_insert, month_rows_sql

load = sql_loader(__package__)

AGGREGATE = "user_cohorts"
# How old the aggregate may get (docs/operations.md#freshness).
FRESHNESS = DAILY_SCHEDULE
SIGNUPS_STATE = "user_signups"
ACTIVITY_STATE = "user_activity_months"

USER_SIGNUPS = DerivedState(SIGNUPS_STATE, "user_signups", ("user_signup",), load("reconcile_user_signups"))
# Any valid event is a user's activity; malformed events of any type are copied.
USER_ACTIVITY_MONTHS = DerivedState(
    ACTIVITY_STATE, "user_activity_months", ALL_EVENT_TYPES, load("reconcile_user_activity_months")
)


# --- derived state ------------------------------------------------------------------------------


def _collect(conn: Connection, part: str, window: state.AbsorbWindow) -> None:
    """Read the absorb window's events for one part of the state (window_<part>.sql)."""
    committed = window.committed
    collect_window(conn, f"cohort_window_{part}", committed.render(load(f"window_{part}")), committed.params)


def _apply(conn: Connection, part: str) -> int:
    """Apply what _collect read (absorb_<part>.sql); returns the rows inserted or changed."""
    return conn.execute(sa.text(load(f"absorb_{part}"))).rowcount


def absorb_user_signups(conn: Connection) -> int:
    """Bring user_signups up to date in the caller's transaction; returns users added or moved."""
    tune_for_aggregation(conn)
    window = state.begin_absorb(conn, SIGNUPS_STATE)
    _collect(conn, "signups", window)
    changed = _apply(conn, "signups")
    state.finish_absorb(conn, window)
    return changed


def absorb_user_activity_months(conn: Connection) -> int:
    """Bring user_activity_months (and the copies of malformed events in malformed_events) up to
    date in the caller's transaction; returns the user months added."""
    tune_for_aggregation(conn)
    window = state.begin_absorb(conn, ACTIVITY_STATE)
    for part in ("activity", "payments", "malformed"):
        _collect(conn, part, window)
    added = _apply(conn, "activity")  # with the new months' payments
    _apply(conn, "payments")
    _apply(conn, "malformed")
    state.finish_absorb(conn, window)
    return added


def signup_counts(conn: Connection) -> dict[str, int]:
    """absorb_user_signups with its counts (analytics_pipeline/aggregation/metadata.py)."""
    return {"users_added_or_moved": absorb_user_signups(conn)}


def activity_counts(conn: Connection) -> dict[str, int]:
    """absorb_user_activity_months with its counts (analytics_pipeline/aggregation/metadata.py)."""
    return {"user_months_added": absorb_user_activity_months(conn)}


@state_asset(schema.user_signups)
def user_signups(database: AnalyticsDatabase) -> dg.MaterializeResult:
    """One row per user who signed up in a tenant: the time of their first `user_signup` and so
    their cohort month. Absorbs new analytics_events incrementally and outlives their purge, so
    old cohorts keep their size. Definitions: docs/metrics.md#cohort-state."""
    started = time.monotonic()
    with database.transaction() as conn:
        counts = signup_counts(conn)
    return dg.MaterializeResult(metadata={**counts, "duration_seconds": round(time.monotonic() - started, 3)})


@state_asset(schema.user_activity_months)
def user_activity_months(database: AnalyticsDatabase) -> dg.MaterializeResult:
    """One row per user and calendar month with any valid event of that user (activity), with the
    user's `payment_completed` amounts of the month (revenue). Absorbs new analytics_events
    incrementally and outlives their purge, so old cohorts keep their revenue and ltv. Each
    month keeps its payments by event id, so the sums stay exact when events are read twice.
    Definitions: docs/metrics.md#cohort-state."""
    started = time.monotonic()
    with database.transaction() as conn:
        counts = activity_counts(conn)
    return dg.MaterializeResult(metadata={**counts, "duration_seconds": round(time.monotonic() - started, 3)})


# --- the aggregate ------------------------------------------------------------------------------

def compute_cohort_rows(conn: Connection, params: dict) -> None:
    """The rows describing a calendar month of [window_start, window_end), from the state tables,
    into cohort_rows: the triangle of the dimension `all` (sql/aggregate.sql)."""
    compute_triangle_rows(conn, params, "cohort_rows", ("all",))


COHORT_ROWS = ComputedRows(
    "cohort_rows",
    "'cohort ' || to_char(r.cohort_month, 'YYYY-MM') || ' month ' || r.month_number",
    (
        ("cohort_size", "r.cohort_size", COUNT_BOUND),
        ("retained_users", "r.retained_users", COUNT_BOUND),
        ("retention_rate", "r.retention_rate * 100", RATE_BOUND),
        ("revenue", "r.revenue", MONEY_BOUND),
        ("ltv", "r.ltv", MONEY_BOUND),
    ),
)


def write_user_cohorts(conn: Connection, params: dict) -> dict[str, object]:
    """Replace every row describing a calendar month of [window_start, window_end) with the
    computed ones."""
    return delete_and_insert(conn, params, schema.user_cohorts, "insert_rows")


USER_COHORTS_AGGREGATE = Aggregate(
    name=AGGREGATE,
    absorbs=(
        lambda conn: {SIGNUPS_STATE: signup_counts(conn)},
        lambda conn: {ACTIVITY_STATE: activity_counts(conn)},
    ),
    compute=compute_cohort_rows,
    computed=(COHORT_ROWS,),
    write=write_user_cohorts,
    malformed=malformed_events,
    checks=RULE_CHECKS,
    prepare_checks=prepare_checks,
    **month_rows_sql(schema.user_cohorts),
)


@aggregate_asset(
    schema.user_cohorts,
    partitions_def=monthly_partitions,
    deps=[user_signups, user_activity_months],
    check_specs=CHECK_SPECS,
    freshness=FRESHNESS,
)
def user_cohorts(
    context: dg.AssetExecutionContext, database: AnalyticsDatabase, cache: CacheInvalidation
) -> dg.MaterializeResult:
    """Retention triangle of each tenant's signup cohorts.

    A user's cohort is the month of their first `user_signup`. Row (cohort_month, month_number m)
    describes calendar month cohort_month + m: cohort_size, retained_users (cohort users with any
    event that month; month 0 is the whole cohort), retention_rate, revenue (their
    `payment_completed` amounts that month) and ltv (cumulative revenue of months 0..m per cohort
    user). Every cohort has a row for every month up to the current one, zeros included.
    Definitions: docs/metrics.md#user_cohorts.

    Partition M (key YYYY-MM-01) writes every row whose month is M. A run brings user_signups and
    user_activity_months up to date, then replaces its months' rows in one transaction. Any month
    can be recomputed at any time, whatever raw events have been purged.
    """
    return run_aggregate(context, database, cache, USER_COHORTS_AGGREGATE)


def touched_cohort_months(conn: Connection, committed: state.Committed, before: dt.date) -> set[dt.date]:
    """Months before `before` whose user_cohorts or user_cohort_segments rows change because of the
    `committed` events (docs/metrics.md#user_cohorts): any event changes its own month (retained
    users, or the malformed count); a payment also changes every later month's ltv, and a signup
    every later month of the cohort it enters or leaves (cohort_size), so those mark every month
    from theirs on; a subscription start every month from its user's cohort month on (their
    first_plan, docs/metrics.md#cohort-segments)."""
    found = conn.execute(
        sa.text(
            f"""
            SELECT date_trunc('month', e."timestamp")::date AS month,
                   bool_or(e.event_type IN ('payment_completed', 'user_signup')) AS moves_later
            FROM analytics_events AS e
            WHERE {committed.sql("e")} AND e."timestamp" < :before
            GROUP BY 1
            """
        ),
        {**committed.params, "before": before},
    ).all()
    months = {month for month, _ in found}
    # A late signup may move a user out of a later cohort: that cohort starts after the signup's
    # month, so it is among the months marked from there on.
    earliest = min((month for month, later in found if later), default=None)
    # A late subscription_started may be its user's first, which moves them to another first_plan
    # in user_cohort_segments (docs/metrics.md#cohort-segments) from their cohort month on.
    first_plan_from = conn.execute(
        sa.text(
            f"""
            SELECT min(s.cohort_month)
            FROM analytics_events AS e
            JOIN user_signups AS s ON s.tenant_id = e.tenant_id AND s.user_id = e.user_id
            WHERE {committed.sql("e")} AND e."timestamp" < :before AND e.event_type = 'subscription_started'
            """
        ),
        {**committed.params, "before": before},
    ).scalar()
    if first_plan_from is not None and (earliest is None or first_plan_from < earliest):
        earliest = first_plan_from
    while earliest is not None and earliest < before:
        months.add(earliest)
        earliest = add_months(earliest, 1)
    return months

