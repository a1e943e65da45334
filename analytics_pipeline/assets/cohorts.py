"""Retention and revenue of signup cohorts: `user_signups` and `user_activity_months` (derived
state) and `user_cohorts` (monthly partitions by the month a row describes), with the daily
schedule that keeps the recent months current.

Definitions: docs/metrics.md#user_cohorts. The SQL is in sql/cohorts/.
"""

# No `from __future__ import annotations`: Dagster reads the config annotation of the asset.
import datetime as dt
import time

import dagster as dg
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .. import schema
from ..api.versions import advance_versions, tenants_in_window
from ..partitions import monthly_partitions
from ..resources import AnalyticsDatabase
from ..partitions import partition_range_tags
from ..state import begin_absorb, finish_absorb
from .aggregate_runs import (
    AggregateRunConfig,
    collect_window,
    column_schema,
    log_kept_rows,
    malformed_check_result,
    malformed_metadata,
    recompute_start,
    rule_check_result,
    tune_for_aggregation,
)
from .periods import lock_aggregate, window_dates
from .sources import analytics_events
from .sql import load

AGGREGATE = "user_cohorts"
SIGNUPS_STATE = "user_signups"
ACTIVITY_STATE = "user_activity_months"

RATES_IN_RANGE_CHECK = "retention_rate_between_0_and_100"
RETAINED_AT_MOST_SIZE_CHECK = "retained_users_at_most_cohort_size"
LTV_NEVER_DECREASES_CHECK = "ltv_never_decreases"
MATCHES_STATE_CHECK = "rows_match_user_state"
MALFORMED_EVENTS_CHECK = "no_malformed_events"

# The daily schedule recalculates the running month and the two before it.
SCHEDULED_MONTHS = 3

_BEGINNING = dt.datetime(1, 1, 1)


def _month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def _add_months(month: dt.date, months: int) -> dt.date:
    index = month.year * 12 + month.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


# --- derived state ------------------------------------------------------------------------------


def _collect(conn: Connection, part: str, params: dict) -> None:
    """Read the absorb window's events for one part of the state (window_<part>.sql)."""
    collect_window(conn, f"cohort_window_{part}", f"cohorts/window_{part}", params)


def _apply(conn: Connection, part: str) -> int:
    """Apply what _collect read (absorb_<part>.sql); returns the rows inserted or changed."""
    return conn.execute(sa.text(load(f"cohorts/absorb_{part}"))).rowcount


def absorb_user_signups(conn: Connection) -> int:
    """Bring user_signups up to date in the caller's transaction; returns users added or moved."""
    tune_for_aggregation(conn)
    window = begin_absorb(conn, SIGNUPS_STATE)
    params = {"since": window.since or _BEGINNING, "through": window.through}
    _collect(conn, "signups", params)
    changed = _apply(conn, "signups")
    finish_absorb(conn, window)
    return changed


def absorb_user_activity_months(conn: Connection) -> int:
    """Bring user_activity_months (and the copies of malformed events in malformed_events) up to
    date in the caller's transaction; returns the user months added."""
    tune_for_aggregation(conn)
    window = begin_absorb(conn, ACTIVITY_STATE)
    params = {"since": window.since or _BEGINNING, "through": window.through}
    for part in ("activity", "payments", "malformed"):
        _collect(conn, part, params)
    added = _apply(conn, "activity")  # with the new months' payments
    _apply(conn, "payments")
    _apply(conn, "malformed")
    finish_absorb(conn, window)
    return added


_STATE_ASSET_ARGS = dict(
    deps=[analytics_events],
    pool="analytics_db",
    group_name="aggregates",
    kinds={"postgres"},
    owners=["team:analytics"],
)


@dg.asset(
    **_STATE_ASSET_ARGS,
    metadata={
        "dagster/table_name": "public.user_signups",
        "dagster/column_schema": column_schema(schema.user_signups),
    },
)
def user_signups(database: AnalyticsDatabase) -> dg.MaterializeResult:
    """One row per user who signed up in a tenant: the time of their first `user_signup` and so
    their cohort month. Absorbs new analytics_events incrementally and outlives their purge, so
    old cohorts keep their size. Definitions: docs/metrics.md#cohort-state."""
    started = time.monotonic()
    with database.transaction() as conn:
        changed = absorb_user_signups(conn)
    return dg.MaterializeResult(
        metadata={"users_added_or_moved": changed, "duration_seconds": round(time.monotonic() - started, 3)}
    )


@dg.asset(
    **_STATE_ASSET_ARGS,
    metadata={
        "dagster/table_name": "public.user_activity_months",
        "dagster/column_schema": column_schema(schema.user_activity_months),
    },
)
def user_activity_months(database: AnalyticsDatabase) -> dg.MaterializeResult:
    """One row per user and calendar month with any valid event of that user (activity), with the
    user's `payment_completed` amounts of the month (revenue). Absorbs new analytics_events
    incrementally and outlives their purge, so old cohorts keep their revenue and ltv. Each
    month keeps its payments by event id, so the sums stay exact when events are read twice.
    Definitions: docs/metrics.md#cohort-state."""
    started = time.monotonic()
    with database.transaction() as conn:
        added = absorb_user_activity_months(conn)
    return dg.MaterializeResult(
        metadata={"user_months_added": added, "duration_seconds": round(time.monotonic() - started, 3)}
    )


# --- the aggregate ------------------------------------------------------------------------------

# The rows a run writes: those describing a calendar month of [:window_start, :window_end).
_TOUCHED_ROWS = """
    SELECT *, (cohort_month + month_number * interval '1 month')::date AS month
    FROM user_cohorts
    WHERE cohort_month + month_number * interval '1 month' >= CAST(:window_start AS date)
      AND cohort_month + month_number * interval '1 month' < CAST(:window_end AS date)
"""

# Each check returns one row per offending row: (id, what is wrong).
_CHECK_SQL = {
    RATES_IN_RANGE_CHECK: f"""
        SELECT id, 'retention_rate ' || retention_rate FROM ({_TOUCHED_ROWS}) t
        WHERE NOT retention_rate BETWEEN 0 AND 100
           OR cohort_size < 0 OR retained_users < 0 OR revenue < 0 OR ltv < 0
        ORDER BY id
    """,
    RETAINED_AT_MOST_SIZE_CHECK: f"""
        SELECT id, 'retained_users ' || retained_users || ' > cohort_size ' || cohort_size
        FROM ({_TOUCHED_ROWS}) t
        WHERE retained_users > cohort_size
        ORDER BY id
    """,
    # Each written row against its neighbours in the same cohort.
    LTV_NEVER_DECREASES_CHECK: f"""
        SELECT DISTINCT later.id, 'ltv ' || later.ltv || ' < ' || earlier.ltv || ' of month ' || earlier.month_number
        FROM ({_TOUCHED_ROWS}) t
        JOIN user_cohorts earlier
          ON earlier.tenant_id = t.tenant_id AND earlier.cohort_month = t.cohort_month
         AND earlier.month_number IN (t.month_number - 1, t.month_number)
        JOIN user_cohorts later
          ON later.tenant_id = t.tenant_id AND later.cohort_month = t.cohort_month
         AND later.month_number = earlier.month_number + 1
        WHERE later.ltv < earlier.ltv
        ORDER BY 1
    """,
    # Recomputed from the state tables another way than aggregate.sql (cumulative revenue by a
    # range join of cohort months rather than a running sum; each row's month from its own
    # cohort_month and month_number), then compared; no row missing or extra.
    MATCHES_STATE_CHECK: f"""
        WITH months AS (
            SELECT m::date AS month
            FROM generate_series(CAST(:window_start AS date), CAST(:window_end AS date) - 1,
                                 interval '1 month') AS m
        ),
        cohorts AS (
            SELECT tenant_id, cohort_month, count(*) AS cohort_size
            FROM user_signups
            GROUP BY 1, 2
        ),
        -- Per cohort and month: users active and their revenue; before the window only what ltv
        -- needs (months with revenue).
        cohort_months AS (
            SELECT s.tenant_id, s.cohort_month, a.activity_month,
                   count(*) AS active_users, sum(a.revenue) AS revenue
            FROM user_signups s
            JOIN user_activity_months a USING (tenant_id, user_id)
            WHERE a.activity_month >= s.cohort_month
              AND a.activity_month < CAST(:window_end AS date)
              AND (a.activity_month >= CAST(:window_start AS date) OR a.revenue > 0)
            GROUP BY 1, 2, 3
        ),
        expected AS (
            SELECT c.tenant_id, c.cohort_month, m.month, c.cohort_size,
                   CASE WHEN m.month = c.cohort_month THEN c.cohort_size
                        ELSE coalesce(sum(x.active_users) FILTER (WHERE x.activity_month = m.month), 0)
                   END AS retained_users,
                   round(coalesce(sum(x.revenue) FILTER (WHERE x.activity_month = m.month), 0), 2) AS revenue,
                   round(coalesce(sum(x.revenue), 0) / c.cohort_size, 2) AS ltv
            FROM cohorts c
            JOIN months m ON m.month >= c.cohort_month
            LEFT JOIN cohort_months x
              ON x.tenant_id = c.tenant_id AND x.cohort_month = c.cohort_month
             AND x.activity_month <= m.month
            GROUP BY c.tenant_id, c.cohort_month, c.cohort_size, m.month
        )
        SELECT coalesce(a.id, e.tenant_id || ':' || e.cohort_month || ' month ' || e.month),
               CASE WHEN a.id IS NULL THEN 'missing row'
                    WHEN e.tenant_id IS NULL THEN 'row without a cohort'
                    ELSE 'differs from user_signups/user_activity_months' END
        FROM expected e
        FULL JOIN ({_TOUCHED_ROWS}) a USING (tenant_id, cohort_month, month)
        WHERE (e.cohort_size, e.retained_users, e.revenue, e.ltv)
              IS DISTINCT FROM (a.cohort_size, a.retained_users, a.revenue, a.ltv)
        ORDER BY 1
    """,
}

_CHECK_DESCRIPTIONS = {
    RATES_IN_RANGE_CHECK: "retention_rate is within 0..100 and no size, count or amount is negative.",
    RETAINED_AT_MOST_SIZE_CHECK: "retained_users never exceeds cohort_size.",
    LTV_NEVER_DECREASES_CHECK: "Within a cohort, ltv never decreases from one month_number to the next.",
    MATCHES_STATE_CHECK: (
        "Size, retained users, revenue and ltv of every written row equal those recomputed from "
        "user_signups and user_activity_months, with no row missing or extra."
    ),
    MALFORMED_EVENTS_CHECK: (
        "No malformed event happened in the window's months (WARN; counts by tenant and type). "
        "Malformed events are neither activity, signups nor revenue."
    ),
}


def write_user_cohorts(conn: Connection, window_start: dt.date, window_end: dt.date) -> tuple[int, int]:
    """Replace every row describing a calendar month of [window_start, window_end), from the
    state tables. Returns (rows written, tenants)."""
    params = {"window_start": window_start, "window_end": window_end}
    conn.execute(sa.text(load("cohorts/delete_months")), params)
    written, tenants = conn.execute(sa.text(load("cohorts/aggregate")), params).one()
    return written, tenants


def malformed_events(conn: Connection, window_start: dt.date, window_end: dt.date) -> list:
    """(tenant_id, event_type, problem, events) of malformed events in the window."""
    return conn.execute(
        sa.text(load("cohorts/malformed")),
        {"window_start": window_start, "window_end": window_end},
    ).all()


def cohort_check_results(
    conn: Connection, window_start: dt.date, window_end: dt.date, malformed: list | None = None
) -> list[dg.AssetCheckResult]:
    """Evaluate the asset checks on the rows describing the months of [window_start, window_end)."""
    params = {"window_start": window_start, "window_end": window_end}
    results = [
        rule_check_result(name, [f"{i}: {why}" for i, why in conn.execute(sa.text(sql), params).all()])
        for name, sql in _CHECK_SQL.items()
    ]
    if malformed is None:
        malformed = malformed_events(conn, window_start, window_end)
    return [*results, malformed_check_result(MALFORMED_EVENTS_CHECK, malformed)]


@dg.asset(
    partitions_def=monthly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[user_signups, user_activity_months],
    pool="analytics_db",
    group_name="aggregates",
    kinds={"postgres"},
    owners=["team:analytics"],
    metadata={
        "dagster/table_name": "public.user_cohorts",
        "dagster/column_schema": column_schema(schema.user_cohorts),
    },
    check_specs=[
        dg.AssetCheckSpec(name, asset=AGGREGATE, description=description)
        for name, description in _CHECK_DESCRIPTIONS.items()
    ],
)
def user_cohorts(
    context: dg.AssetExecutionContext, config: AggregateRunConfig, database: AnalyticsDatabase
) -> dg.MaterializeResult:
    """Retention triangle of each tenant's signup cohorts.

    A user's cohort is the month of their first `user_signup`. Row (cohort_month, month_number m)
    describes calendar month cohort_month + m: cohort_size, retained_users (cohort users with any
    event that month; month 0 is the whole cohort), retention_rate, revenue (their
    `payment_completed` amounts that month) and ltv (cumulative revenue of months 0..m per cohort
    user). Every cohort has a row for every month up to the current one, zeros included.
    Definitions: docs/metrics.md#user_cohorts.

    Partition M (key YYYY-MM-01) writes every row whose month is M. A run brings user_signups and
    user_activity_months up to date, then replaces its months' rows in one transaction. Months
    ending before the retention cutoff keep their stored rows unless the run config says
    `recompute_before_retention_cutoff`.
    """
    started = time.monotonic()
    window_start, window_end = window_dates(context)
    first_day = recompute_start(window_start, window_end, config.recompute_before_retention_cutoff)
    # A month is kept only when it ends on or before the cutoff.
    start = _month_start(first_day) if first_day < window_end else window_end
    if start > window_start:
        log_kept_rows(context, f"months {window_start:%Y-%m}..{_add_months(start, -1):%Y-%m}")
    with database.transaction() as conn:
        lock_aggregate(conn, AGGREGATE)
        tune_for_aggregation(conn)
        signups = absorb_user_signups(conn)
        activity = absorb_user_activity_months(conn)
        written, tenants = write_user_cohorts(conn, start, window_end) if start < window_end else (0, 0)
        malformed = malformed_events(conn, start, window_end)
        checks = cohort_check_results(conn, start, window_end, malformed)
    advance_versions(AGGREGATE, tenants_in_window(database, AGGREGATE, start, window_end), context.log)
    return dg.MaterializeResult(
        metadata={
            "window": f"{window_start:%Y-%m}..{_add_months(window_end, -1):%Y-%m}",
            "recomputed_from": f"{start:%Y-%m}" if start < window_end else "nothing (before retention cutoff)",
            "rows_written": written,
            "tenants": tenants,
            "state_users_added_or_moved": signups,
            "state_user_months_added": activity,
            **malformed_metadata(malformed),
            "duration_seconds": round(time.monotonic() - started, 3),
        },
        check_results=checks,
    )


user_cohorts_job = dg.define_asset_job(
    "user_cohorts_job",
    selection=[user_cohorts],
    description="user_cohorts for a range of months, in one run.",
)


@dg.schedule(
    job=user_cohorts_job,
    cron_schedule="30 2 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def user_cohorts_daily(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Every day at 02:30 UTC, recalculate the running month and the two before it in one run."""
    today = context.scheduled_execution_time.astimezone(dt.UTC).date()
    current = _month_start(today)
    first = max(_add_months(current, 1 - SCHEDULED_MONTHS), _month_start(monthly_partitions.start.date()))
    return dg.RunRequest(
        run_key=context.scheduled_execution_time.isoformat(),
        tags=partition_range_tags(first, current),
    )


defs = dg.Definitions(
    assets=[user_signups, user_activity_months, user_cohorts],
    jobs=[user_cohorts_job],
    schedules=[user_cohorts_daily],
)
