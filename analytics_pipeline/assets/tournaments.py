"""Tournament performance per tenant and period: `tournament_history` (derived state, one row per
tournament) and `tournament_aggregates` (daily partitions; day, week, month, quarter and year rows).

Definitions: docs/metrics.md#tournament_aggregates. The SQL is in sql/tournaments/.
"""

# No `from __future__ import annotations`: Dagster reads the config annotation of the asset.
import datetime as dt
import time

import dagster as dg
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .. import schema
from ..api.versions import advance_versions, tenants_in_window
from ..partitions import daily_partitions
from ..resources import AnalyticsDatabase
from ..state import ABSORB_OVERLAP, begin_absorb, finish_absorb, watermarks
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
from .periods import PERIOD_TYPES, TOUCHED_PERIODS_SQL, lock_aggregate, window_dates
from .sources import analytics_events
from .sql import load

AGGREGATE = "tournament_aggregates"
STATE = "tournament_history"

RATES_IN_RANGE_CHECK = "completion_rate_between_0_and_100"
COMPLETED_AT_MOST_COUNT_CHECK = "completed_count_at_most_tournament_count"
MATCHES_HISTORY_CHECK = "rows_match_tournament_history"
MALFORMED_EVENTS_CHECK = "no_malformed_tournament_events"

_TOUCHED_PERIODS_TABLE = (
    "CREATE TEMP TABLE tournament_touched_periods ON COMMIT DROP AS " + TOUCHED_PERIODS_SQL
)

# Before any watermark: the beginning of time, so the absorb reads every event.
_BEGINNING = dt.datetime(1, 1, 1)


# --- derived state ------------------------------------------------------------------------------


def absorb_tournament_history(conn: Connection) -> dict[str, int]:
    """Bring tournament_history (and the copies of malformed tournament events in
    malformed_events) up to date with the events created since the
    state's watermark, in the caller's transaction. Idempotent."""
    tune_for_aggregation(conn)
    window = begin_absorb(conn, STATE)
    params = {"since": window.since or _BEGINNING, "through": window.through}
    # Read analytics_events once into a table dropped at commit, shared by the statements below.
    events = collect_window(conn, "tournament_window_events", "tournaments/window_events", params)
    conn.execute(sa.text("ANALYZE tournament_window_events"))
    tournaments = conn.execute(sa.text(load("tournaments/absorb_history"))).rowcount
    conn.execute(sa.text(load("tournaments/absorb_players")))
    conn.execute(sa.text(load("tournaments/absorb_payments")))
    conn.execute(sa.text(load("tournaments/absorb_malformed")))
    finish_absorb(conn, window)
    return {"events_read": events, "tournaments_updated": tournaments}


@dg.asset(
    deps=[analytics_events],
    pool="analytics_db",
    group_name="aggregates",
    kinds={"postgres"},
    owners=["team:analytics"],
    metadata={
        "dagster/table_name": "public.tournament_history",
        "dagster/column_schema": column_schema(schema.tournament_history),
    },
)
def tournament_history(database: AnalyticsDatabase) -> dg.MaterializeResult:
    """One row per tournament a tenant ran: the day it belongs to (its `tournament_created` event,
    else its earliest event), its format, when it started and completed, its completion's
    duration_minutes, its distinct registered players and the payments naming it.

    Absorbs new analytics_events incrementally (by created_at) and keeps what the metrics need
    after raw events are purged, so old periods keep their numbers. Definitions:
    docs/metrics.md#tournament-state.
    """
    started = time.monotonic()
    with database.transaction() as conn:
        absorbed = absorb_tournament_history(conn)
    return dg.MaterializeResult(
        metadata={**absorbed, "duration_seconds": round(time.monotonic() - started, 3)}
    )


def late_tournament_days(
    conn: Connection, since: dt.datetime, through: dt.datetime, before: dt.date | None = None
) -> set[dt.date]:
    """Day partitions of tournament_aggregates that events created in (since, through] change,
    only those before `before` when given (the late-data sensor's finder signature).

    A late completion, registration or payment changes the day its tournament belongs to (per its
    tournament_created event, else its earliest event), not the day it happened. A late
    tournament_created can move a tournament to another day; both days are returned. Reads only
    the created_at window (indexed) and tournament_history, so it suits a sensor tick.
    """
    absorbed_through = watermarks(conn).get(STATE)
    unabsorbed_since = (
        min(since, absorbed_through - ABSORB_OVERLAP) if absorbed_through is not None else _BEGINNING
    )
    rows = conn.execute(
        sa.text(load("tournaments/late_days")),
        {"since": since, "through": through, "unabsorbed_since": unabsorbed_since},
    )
    return {day for (day,) in rows if before is None or day < before}


# --- the aggregate ------------------------------------------------------------------------------

# Each check reads the touched periods' rows (tournament_touched_periods) and returns one row per
# offending aggregate row: (id, what is wrong).
_CHECK_SQL = {
    RATES_IN_RANGE_CHECK: """
        SELECT a.id, 'completion_rate ' || a.completion_rate
        FROM tournament_aggregates a
        JOIN tournament_touched_periods p USING (period_type, period_start)
        WHERE NOT a.completion_rate BETWEEN 0 AND 100
           OR a.tournament_count < 0 OR a.completed_count < 0 OR a.total_players < 0
           OR a.avg_players < 0 OR a.avg_duration_minutes < 0 OR a.revenue < 0
        ORDER BY a.id
    """,
    COMPLETED_AT_MOST_COUNT_CHECK: """
        SELECT a.id, 'completed_count ' || a.completed_count || ' > tournament_count ' || a.tournament_count
        FROM tournament_aggregates a
        JOIN tournament_touched_periods p USING (period_type, period_start)
        WHERE a.completed_count > a.tournament_count
        ORDER BY a.id
    """,
    # Counts and sums against tournament_history, and no row missing or extra.
    MATCHES_HISTORY_CHECK: """
        WITH expected AS (
            SELECT h.tenant_id, p.period_type, p.period_start, count(*) AS tournament_count,
                   count(h.completed_at) AS completed_count, sum(h.player_count) AS total_players,
                   round(sum(h.revenue), 2) AS revenue
            FROM tournament_touched_periods p
            JOIN tournament_history h ON h.tournament_day BETWEEN p.period_start AND p.period_end
            GROUP BY 1, 2, 3
        ),
        actual AS (
            SELECT a.* FROM tournament_aggregates a
            JOIN tournament_touched_periods p USING (period_type, period_start)
        )
        SELECT coalesce(a.id, e.tenant_id || ':' || e.period_type || ':' || e.period_start),
               CASE WHEN a.id IS NULL THEN 'missing row'
                    WHEN e.tenant_id IS NULL THEN 'row without tournaments'
                    ELSE 'differs from tournament_history' END
        FROM expected e
        FULL JOIN actual a USING (tenant_id, period_type, period_start)
        WHERE (e.tournament_count, e.completed_count, e.total_players, e.revenue)
              IS DISTINCT FROM (a.tournament_count, a.completed_count, a.total_players, a.revenue)
        ORDER BY 1
    """,
}

_CHECK_DESCRIPTIONS = {
    RATES_IN_RANGE_CHECK: "completion_rate is within 0..100 and no count, average or revenue is negative.",
    COMPLETED_AT_MOST_COUNT_CHECK: "completed_count never exceeds tournament_count.",
    MATCHES_HISTORY_CHECK: (
        "Counts, players and revenue of every written row equal those of the period's tournaments "
        "in tournament_history, with no row missing or extra."
    ),
    MALFORMED_EVENTS_CHECK: (
        "No malformed tournament, registration or tournament payment event happened in the window "
        "(WARN; counts by tenant and type). Malformed events are left out of every metric."
    ),
}


def _create_touched_periods(conn: Connection, window_start: dt.date, window_end: dt.date) -> None:
    conn.execute(sa.text("DROP TABLE IF EXISTS tournament_touched_periods"))
    conn.execute(
        sa.text(_TOUCHED_PERIODS_TABLE), {"window_start": window_start, "window_end": window_end}
    )


def write_tournament_aggregates(
    conn: Connection, window_start: dt.date, window_end: dt.date
) -> dict[str | None, tuple[int, int]]:
    """Replace every row of the periods touching the days [window_start, window_end), from
    tournament_history. Returns {period_type: (rows, tenants)}, with key None for the total."""
    _create_touched_periods(conn, window_start, window_end)
    conn.execute(sa.text(load("tournaments/delete_touched")))
    rows = conn.execute(sa.text(load("tournaments/aggregate")))
    return {period_type: (written, tenants) for period_type, written, tenants in rows}


def malformed_tournament_events(conn: Connection, window_start: dt.date, window_end: dt.date) -> list:
    """(tenant_id, event_type, problem, events) of malformed events tournament_aggregates reads."""
    return conn.execute(
        sa.text(load("tournaments/malformed")),
        {"window_start": window_start, "window_end": window_end},
    ).all()


def tournament_check_results(
    conn: Connection, window_start: dt.date, window_end: dt.date, malformed: list | None = None
) -> list[dg.AssetCheckResult]:
    """Evaluate the asset checks on the rows of the periods touching [window_start, window_end)."""
    _create_touched_periods(conn, window_start, window_end)
    results = [
        rule_check_result(name, [f"{i}: {why}" for i, why in conn.execute(sa.text(sql)).all()])
        for name, sql in _CHECK_SQL.items()
    ]
    if malformed is None:
        malformed = malformed_tournament_events(conn, window_start, window_end)
    return [*results, malformed_check_result(MALFORMED_EVENTS_CHECK, malformed)]


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[tournament_history],
    pool="analytics_db",
    group_name="aggregates",
    kinds={"postgres"},
    owners=["team:analytics"],
    metadata={
        "dagster/table_name": "public.tournament_aggregates",
        "dagster/column_schema": column_schema(schema.tournament_aggregates),
    },
    check_specs=[
        dg.AssetCheckSpec(name, asset=AGGREGATE, description=description)
        for name, description in _CHECK_DESCRIPTIONS.items()
    ],
)
def tournament_aggregates(
    context: dg.AssetExecutionContext, config: AggregateRunConfig, database: AnalyticsDatabase
) -> dg.MaterializeResult:
    """Tournament performance of each tenant per day, ISO week, month, quarter and year.

    A row describes the tournaments that belong to the period: those whose `tournament_created`
    event (else their earliest event) falls in it. tournament_count, completed_count (a
    `tournament_completed` event, whenever it arrived), completion_rate, total_players (distinct
    registered players), avg_players, avg_duration_minutes (completed tournaments),
    most_popular_format, and revenue (payments naming the tournaments). A row exists when the
    period has a tournament. Definitions: docs/metrics.md#tournament_aggregates.

    A run over a range of days (one run for a whole backfill) brings tournament_history up to
    date, then replaces every day, week, month, quarter and year row those days touch, in one
    transaction. Days before the retention cutoff keep their stored rows unless the run config
    says `recompute_before_retention_cutoff`.
    """
    started = time.monotonic()
    window_start, window_end = window_dates(context)
    start = recompute_start(window_start, window_end, config.recompute_before_retention_cutoff)
    if start > window_start:
        log_kept_rows(context, f"days {window_start}..{start - dt.timedelta(days=1)}")
    with database.transaction() as conn:
        lock_aggregate(conn, AGGREGATE)
        tune_for_aggregation(conn)
        absorbed = absorb_tournament_history(conn)
        written = write_tournament_aggregates(conn, start, window_end) if start < window_end else {}
        malformed = malformed_tournament_events(conn, start, window_end)
        checks = tournament_check_results(conn, start, window_end, malformed)
    advance_versions(AGGREGATE, tenants_in_window(database, AGGREGATE, start, window_end), context.log)
    _, total_tenants = written.get(None, (0, 0))
    return dg.MaterializeResult(
        metadata={
            "window": f"{window_start}..{window_end - dt.timedelta(days=1)}",
            "recomputed_from": str(start) if start < window_end else "nothing (before retention cutoff)",
            **{f"rows_{p}": written.get(p, (0, 0))[0] for p in PERIOD_TYPES},
            "tenants": total_tenants,
            "state_events_absorbed": absorbed["events_read"],
            **malformed_metadata(malformed),
            "duration_seconds": round(time.monotonic() - started, 3),
        },
        check_results=checks,
    )


defs = dg.Definitions(assets=[tournament_history, tournament_aggregates])
