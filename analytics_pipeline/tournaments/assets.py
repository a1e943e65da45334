"""Tournament performance per tenant and period: `tournament_history` (derived state, one row per
tournament) and `tournament_aggregates` (daily partitions; day, week, month, quarter and year rows).

Definitions: docs/metrics.md#tournament_aggregates. The SQL is in sql/.
"""

import datetime as dt
import time

import dagster as dg
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..aggregation import state
from ..aggregation.assets import aggregate_asset, state_asset
from ..aggregation.bounds import AVERAGE_BOUND, COUNT_BOUND, MONEY_BOUND, RATE_BOUND, ComputedRows
from ..aggregation.declarations import DerivedState
from ..aggregation.freshness import HOURLY_SCHEDULE
from ..aggregation.partitions import daily_partitions
from ..aggregation.periods import PERIOD_TYPES, TOUCHED_PERIODS_SQL
from ..aggregation.runs import Aggregate, collect_window, empty_day_partitions_sql, run_aggregate, tune_for_aggregation
from ..aggregation.schedules import HOURLY
from ..core import schema
from ..core.cache_versions import CacheInvalidation
from ..core.resources import AnalyticsDatabase
from ..core.sql import sql_loader
from .checks import CHECK_SPECS, RULE_CHECKS, malformed_tournament_events

load = sql_loader(__package__)

AGGREGATE = "tournament_aggregates"
# How old the aggregate may get (docs/operations.md#freshness).
FRESHNESS = HOURLY_SCHEDULE
STATE = "tournament_history"

TOURNAMENT_HISTORY = DerivedState(
    STATE,
    "tournament_history",
    # Payments count when they name a tournament; malformed events of these types are copied.
    ("tournament_created", "tournament_started", "tournament_completed", "tournament_cancelled",
     "player_registered", "payment_completed"),
    load("reconcile_tournament_history"),
)

_TOUCHED_PERIODS_TABLE = (
    "CREATE TEMP TABLE tournament_touched_periods ON COMMIT DROP AS " + TOUCHED_PERIODS_SQL
)


# --- derived state ------------------------------------------------------------------------------


def absorb_tournament_history(conn: Connection) -> dict[str, int]:
    """Bring tournament_history (and the copies of malformed tournament events in
    malformed_events) up to date with the events committed since the state's last absorb, in the
    caller's transaction (analytics_pipeline/aggregation/state.py). Idempotent. Returns its counts
    (analytics_pipeline/aggregation/metadata.py)."""
    tune_for_aggregation(conn)
    window = state.begin_absorb(conn, STATE)
    committed = window.committed
    # Read analytics_events once into a table dropped at commit, shared by the statements below.
    events = collect_window(conn, "tournament_window_events", committed.render(load("window_events")), committed.params)
    conn.execute(sa.text("ANALYZE tournament_window_events"))
    tournaments = conn.execute(sa.text(load("absorb_history"))).rowcount
    conn.execute(sa.text(load("absorb_players")))
    conn.execute(sa.text(load("absorb_payments")))
    conn.execute(sa.text(load("absorb_malformed")))
    state.finish_absorb(conn, window)
    return {"events_read": events, "tournaments_updated": tournaments}


@state_asset(schema.tournament_history)
def tournament_history(database: AnalyticsDatabase) -> dg.MaterializeResult:
    """One row per tournament a tenant ran: the day it belongs to (its `tournament_created` event,
    else its earliest event), its format, when it started and completed, its completion's
    duration_minutes, its distinct registered players and the payments naming it.

    Absorbs new analytics_events incrementally (in commit order) and keeps what the metrics need
    after raw events are purged, so old periods keep their numbers. Definitions:
    docs/metrics.md#tournament-state.
    """
    started = time.monotonic()
    with database.transaction() as conn:
        absorbed = absorb_tournament_history(conn)
    return dg.MaterializeResult(
        metadata={**absorbed, "duration_seconds": round(time.monotonic() - started, 3)}
    )


def touched_tournament_days(conn: Connection, committed: state.Committed, before: dt.date | None = None) -> set[dt.date]:
    """Day partitions of tournament_aggregates that the `committed` events change, only those
    before `before` when given (the freshness sensor's finder signature).

    A late completion, registration or payment changes the day its tournament belongs to (per its
    tournament_created event, else its earliest event), not the day it happened. A late
    tournament_created can move a tournament to another day; both days are returned. Reads only
    the new commits (by the ingest_xid index) and tournament_history, so it suits a sensor tick.
    """
    unabsorbed = state.unabsorbed(conn, STATE, committed.through)
    statement = unabsorbed.render(committed.render(load("touched_days")), placeholder="unabsorbed")
    rows = conn.execute(sa.text(statement), {**committed.params, **unabsorbed.params})
    return {day for (day,) in rows if before is None or day < before}


# --- the aggregate ------------------------------------------------------------------------------


def _create_touched_periods(conn: Connection, params: dict) -> None:
    """The periods touching the window, in `tournament_touched_periods`: those the computation
    replaces and the checks read."""
    conn.execute(sa.text("DROP TABLE IF EXISTS tournament_touched_periods"))
    conn.execute(sa.text(_TOUCHED_PERIODS_TABLE), params)


def compute_tournament_rows(conn: Connection, params: dict) -> None:
    """The rows of the periods touching the days [window_start, window_end), from
    tournament_history, into tournament_rows."""
    _create_touched_periods(conn, params)
    conn.execute(sa.text("DROP TABLE IF EXISTS pg_temp.tournament_rows"))
    conn.execute(sa.text(load("aggregate")))


TOURNAMENT_ROWS = ComputedRows(
    "tournament_rows",
    "r.period_type || ' ' || r.period_start",
    (
        ("tournament_count", "r.tournament_count", COUNT_BOUND),
        ("completed_count", "r.completed_count", COUNT_BOUND),
        ("completion_rate", "r.completion_rate", RATE_BOUND),
        ("total_players", "r.total_players", COUNT_BOUND),
        ("avg_players", "r.avg_players", AVERAGE_BOUND),
        ("avg_duration_minutes", "r.avg_duration_minutes", MONEY_BOUND),
        ("revenue", "r.revenue", MONEY_BOUND),
    ),
)


def write_tournament_aggregates(conn: Connection, params: dict) -> dict[str, object]:
    """Replace every row of the periods touching the days [window_start, window_end) with the
    computed ones."""
    conn.execute(sa.text(load("delete_touched")))
    written = {p: (rows, tenants) for p, rows, tenants in conn.execute(sa.text(load("insert_rows")))}
    total_rows, total_tenants = written.get(None, (0, 0))
    return {
        "rows_written": total_rows,
        **{f"rows_{p}": written.get(p, (0, 0))[0] for p in PERIOD_TYPES},
        "tenants": total_tenants,
    }


TOURNAMENT_AGGREGATE = Aggregate(
    name=AGGREGATE,
    absorbs=(lambda conn: {STATE: absorb_tournament_history(conn)},),
    compute=compute_tournament_rows,
    computed=(TOURNAMENT_ROWS,),
    write=write_tournament_aggregates,
    table=schema.tournament_aggregates,
    window_rows_sql=(
        f"FROM tournament_aggregates AS r WHERE (r.period_type, r.period_start) IN "
        f"(SELECT period_type, period_start FROM ({TOUCHED_PERIODS_SQL}) AS t)"
    ),
    empty_partitions_sql=empty_day_partitions_sql("tournament_aggregates"),
    malformed=malformed_tournament_events,
    checks=RULE_CHECKS,
    prepare_checks=_create_touched_periods,
    describe_window=lambda start, end: f"{start}..{end - dt.timedelta(days=1)}",
    inputs="tournaments",
)


@aggregate_asset(
    schema.tournament_aggregates,
    partitions_def=daily_partitions,
    deps=[tournament_history],
    check_specs=CHECK_SPECS,
    freshness=FRESHNESS,
    tags=HOURLY,
)
def tournament_aggregates(
    context: dg.AssetExecutionContext, database: AnalyticsDatabase, cache: CacheInvalidation
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
    transaction. Any day can be recomputed at any time, whatever raw events have been purged.
    """
    return run_aggregate(context, database, cache, TOURNAMENT_AGGREGATE)
