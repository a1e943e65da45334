"""`revenue_segments`: revenue_aggregates' MRR, movements and customers by plan, billing interval
and acquisition source (docs/metrics.md#revenue_segments), from the segment state that the
histories' absorb maintains. The SQL is in sql/segments/."""

import dataclasses
import datetime as dt
import functools

import dagster as dg
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..aggregation import state
from ..aggregation.assets import aggregate_asset
from ..aggregation.bounds import COUNT_BOUND, MONEY_BOUND, ComputedRows
from ..aggregation.partitions import daily_partitions
from ..aggregation.periods import TOUCHED_PERIODS_SQL
from ..aggregation.runs import (
    Aggregate,
    empty_day_partitions_sql,
    lock_aggregate,
    recompute_window,
    run_aggregate,
)
from ..aggregation.schedules import HOURLY
from ..core import schema
from ..core.cache_versions import CacheInvalidation
from ..core.resources import AnalyticsDatabase
from .assets import AGGREGATE as REVENUE_AGGREGATE_NAME
from .assets import (
    CUSTOMER_SOURCES,
    FRESHNESS,
    PAYMENT_HISTORY,
    REVENUE_AGGREGATE,
    SUBSCRIPTION_HISTORY,
    customer_sources,
    load,
    revenue_aggregates,
    subscription_history,
    write_window,
)
from .checks import (
    SEGMENT_CHECK_SPECS,
    SEGMENT_RULE_CHECKS,
    VALUES_ADD_UP_TO_REVENUE_AGGREGATES_CHECK,
    load_segment_sql,
    prepare_segment_checks,
)

SEGMENTS = "revenue_segments"
# The run's metadata: tenants whose revenue_aggregates rows it brought up to the state it read.
REVENUE_BROUGHT_UP_TO_DATE = "revenue_aggregates_tenants_brought_up_to_date"

# For the rest of the run, in place of the aggregation's (runs.tune_for_aggregation): a backfill
# groups about 100,000 tenant, period and value sums of numeric, each sum's state some hundred
# bytes, for the weeks and months and for the identity, which spill to disk in batches at 64MB
# (bench/segments_bench.py).
SEGMENTS_WORK_MEM = "256MB"


def _sql(name: str, rows: str = "") -> str:
    return load(f"segments/{name}").replace("{touched_periods}", TOUCHED_PERIODS_SQL).replace("{rows}", rows)


# The derived states the segment and MRR states (and revenue_aggregates' rows) are absorbed into.
READ_STATES = tuple(sorted((SUBSCRIPTION_HISTORY.name, PAYMENT_HISTORY.name, CUSTOMER_SOURCES.name)))


def compute_segment_rows(conn: Connection, params: dict) -> None:
    """The day rows of the window and the rows of every period containing one of them, from the
    segment state (the window's days and each value's opening), into segment_day_rows and
    segment_period_rows.

    The run does not absorb: under revenue_aggregates' lock, so that a run of it in flight commits
    first and none starts meanwhile, and holding the states, it reads one state from which both
    tables' rows of the window are computed (the write brings revenue_aggregates' rows up to it where
    they lag; their identity is the check `values_add_up_to_revenue_aggregates`;
    docs/metrics.md#segment-state). Events absorbed since reach it through the new-events sensor
    (touched_segment_days)."""
    lock_aggregate(conn, REVENUE_AGGREGATE_NAME)
    state.hold(conn, *READ_STATES)
    conn.execute(sa.text(f"SET LOCAL work_mem = '{SEGMENTS_WORK_MEM}'"))
    # The computed rows' statistics serve their sizes and joins, which a sample of 3,000 rows
    # gives as well as the default 30,000, for a tenth of the time on a backfill's million rows.
    conn.execute(sa.text("SET LOCAL default_statistics_target = 10"))
    for name in ("window_days", "opening", "day_rows"):
        conn.execute(sa.text(_sql(name)), params)
    conn.execute(sa.text("ANALYZE segment_day_rows"))
    # Weeks and months from their days, then quarters and years from their months.
    conn.execute(
        sa.text("CREATE TEMP TABLE segment_period_rows ON COMMIT DROP AS " + _sql("roll_up", _sql("period_days"))),
        {**params, "levels": ["week", "month"]},
    )
    conn.execute(
        sa.text("INSERT INTO segment_period_rows " + _sql("roll_up", _sql("period_months"))),
        {**params, "levels": ["quarter", "year"]},
    )
    # Without statistics the write's anti-joins against the computed rows run as nested loops.
    conn.execute(sa.text("ANALYZE segment_period_rows"))


# The breaks of the identity with revenue_aggregates on the stored rows of the window, as the
# write leaves them: (tenant_id, which, why), read by the run's check
# `values_add_up_to_revenue_aggregates`.
IDENTITY_BREAKS = "segment_identity_breaks"


def write_and_bring_revenue_aggregates_up_to_date(
    conn: Connection, params: dict, revenue_changed: set[str] | None = None
) -> dict[str, object]:
    """Write the computed rows (write_revenue_segments), then evaluate the identity with
    revenue_aggregates on the stored rows of the window into `segment_identity_breaks`, the check
    `values_add_up_to_revenue_aggregates`' result for the run. When it breaks for some tenant
    (revenue_aggregates' rows of the window were computed before an absorb that changed the state:
    a late event read by a run whose window did not hold its day), or a tenant's segment rows were
    held back (values out of range: left out of the identity, while its revenue_aggregates rows
    may still lag), revenue_aggregates' window is brought up to the state
    (runs.recompute_window) and the identity evaluated anew for the tenants that
    broke it and those whose revenue_aggregates rows changed. `revenue_changed` gains the latter.
    The usual run finds nothing lagging and evaluates the identity once."""
    written = write_revenue_segments(conn, params)
    conn.execute(sa.text(f"DROP TABLE IF EXISTS pg_temp.{IDENTITY_BREAKS}"))
    conn.execute(
        sa.text(f"CREATE TEMP TABLE {IDENTITY_BREAKS} ON COMMIT DROP AS {load_segment_sql('identity_breaks')}"), params
    )
    breaking = set(conn.execute(sa.text(f"SELECT DISTINCT tenant_id FROM {IDENTITY_BREAKS}")).scalars())
    held_back = conn.execute(sa.text("SELECT EXISTS (SELECT FROM tenants_not_written)")).scalar_one()
    if not breaking and not held_back:
        return written
    # The catch-up holds back revenue_aggregates' own tenants (bounds.py); the segments' stay those
    # the run's checks leave out.
    conn.execute(sa.text("CREATE TEMP TABLE segment_tenants_not_written ON COMMIT DROP AS TABLE tenants_not_written"))
    changed = recompute_window(conn, REVENUE_AGGREGATE, params)
    conn.execute(sa.text("DROP TABLE tenants_not_written"))
    conn.execute(sa.text("ALTER TABLE segment_tenants_not_written RENAME TO tenants_not_written"))
    again = sorted(breaking | changed)
    if again:
        only = "(SELECT * FROM {} WHERE tenant_id = ANY (CAST(:again AS text[])))"
        conn.execute(sa.text(f"DELETE FROM {IDENTITY_BREAKS} WHERE tenant_id = ANY (CAST(:again AS text[]))"),
                     {"again": again})
        conn.execute(
            sa.text(
                f"INSERT INTO {IDENTITY_BREAKS} "
                + load_segment_sql("identity_breaks", only.format("revenue_segments"), only.format("revenue_aggregates"))
            ),
            {**params, "again": again},
        )
    if revenue_changed is not None:
        revenue_changed |= changed
    return written


# The touched periods' rows: those starting on a touched period's first day that contain a day
# of the window (check_rows.sql), a filter rather than a join.
WINDOW_ROWS_SQL = (
    f"FROM revenue_segments AS r WHERE r.period_start = ANY (ARRAY(SELECT period_start FROM ({TOUCHED_PERIODS_SQL}) "
    "AS t)) AND r.period_start < CAST(:window_end AS date) AND r.period_end >= CAST(:window_start AS date)"
)

_SEGMENT_VALUES = (
    ("mrr", "r.mrr", MONEY_BOUND),
    ("arr", "r.mrr * 12", MONEY_BOUND),
    *((column, f"r.{column}", MONEY_BOUND) for column in schema.SEGMENT_MOVEMENTS),
    *((column, f"r.{column}", COUNT_BOUND) for column in schema.SEGMENT_CUSTOMER_COUNTS),
)
SEGMENT_ROWS = tuple(
    ComputedRows(
        table, "r.period_type || ' ' || r.period_start || ' ' || r.dimension || ' ' || r.value", _SEGMENT_VALUES
    )
    for table in ("segment_day_rows", "segment_period_rows")
)


def write_revenue_segments(conn: Connection, params: dict) -> dict[str, object]:
    """Replace the day rows of the window and every period containing one of them with the
    computed ones. The keys of the window's stored rows are kept first (segment_stored_keys), in
    which upsert_rows.sql looks up whether a computed row is new. Not analyzed: the planner then
    sizes the table by its pages, and an empty one (a backfill's) as a few pages' worth, which it
    hashes, where statistics saying "no row" would have it scan the table once per computed row."""
    conn.execute(sa.text("DROP TABLE IF EXISTS pg_temp.segment_stored_keys"))
    conn.execute(
        sa.text(
            "CREATE TEMP TABLE segment_stored_keys ON COMMIT DROP AS "
            f"SELECT r.tenant_id, r.period_type, r.dimension, r.period_start, r.value {WINDOW_ROWS_SQL}"
        ),
        params,
    )
    return write_window(conn, params, SEGMENTS, _sql, "segment_day_rows", "segment_period_rows")


def prepare_segment_check_rows(conn: Connection, params: dict) -> None:
    """The rows of the window beside their opening MRR and customers (check_rows.sql), which
    reads the state's levels of the window's days (state_levels.sql): analyzed first, so that the
    rows of a backfill are joined to them by hashing, not looked up one by one. Both temporary
    tables are made anew, so that the checks can be evaluated twice in one transaction."""
    conn.execute(sa.text("DROP TABLE IF EXISTS pg_temp.segment_state_levels, pg_temp.segment_check_rows"))
    conn.execute(sa.text(_sql("state_levels")), params)
    conn.execute(sa.text("ANALYZE segment_state_levels"))
    prepare_segment_checks(conn, params)


def malformed_segment_events(conn: Connection, params: dict) -> list:
    """(tenant_id, event_type, problem, events) of malformed events the segments read."""
    return conn.execute(sa.text(load("segments/malformed")), params).all()


REVENUE_SEGMENTS = Aggregate(
    name=SEGMENTS,
    absorbs=(),
    compute=compute_segment_rows,
    computed=SEGMENT_ROWS,
    write=write_and_bring_revenue_aggregates_up_to_date,
    table=schema.revenue_segments,
    window_rows_sql=WINDOW_ROWS_SQL,
    empty_partitions_sql=empty_day_partitions_sql(SEGMENTS),
    malformed=malformed_segment_events,
    checks=SEGMENT_RULE_CHECKS,
    prepare_checks=prepare_segment_check_rows,
    describe_window=lambda start, end: f"{start}..{end}",
    inputs="subscriptions",
)


# The checks of a run: the identity's from `segment_identity_breaks`, which the write evaluated on
# the stored rows (write_and_bring_revenue_aggregates_up_to_date); outside a run
# (Aggregate.check_stored_rows) REVENUE_SEGMENTS evaluates its own SQL.
RUN_CHECKS = tuple(
    dataclasses.replace(check, sql=f"SELECT which, why FROM {IDENTITY_BREAKS} ORDER BY 1, 2")
    if check.name == VALUES_ADD_UP_TO_REVENUE_AGGREGATES_CHECK else check
    for check in SEGMENT_RULE_CHECKS
)


@aggregate_asset(
    schema.revenue_segments,
    partitions_def=daily_partitions,
    deps=[revenue_aggregates, subscription_history, customer_sources],
    check_specs=SEGMENT_CHECK_SPECS,
    freshness=FRESHNESS,
    tags=HOURLY,
)
def revenue_segments(
    context: dg.AssetExecutionContext, database: AnalyticsDatabase, cache: CacheInvalidation
) -> dg.MaterializeResult:
    """Revenue per tenant, period, dimension and value: the MRR and ARR, the five MRR movements,
    the transfers between values of one customer (a plan change: docs/metrics.md#segment-movements)
    and the customer counts of revenue_aggregates, by plan, billing interval and acquisition
    source; a customer without a source counts under `(none)`. For every dimension the values add
    up to revenue_aggregates, column by column (the ERROR check values_add_up_to_revenue_aggregates).

    One row per tenant, day, ISO week, month, quarter and year, dimension and value that has MRR > 0
    or a change. A run over a range of day partitions recomputes those days and every period
    containing them from the segment state (docs/metrics.md#segment-state), which the histories'
    absorb maintains, inside one transaction: any day can be recomputed at any time, whatever raw
    events have been purged. Where revenue_aggregates' rows of the window lag behind that state (a
    late event absorbed by a run that did not cover its day), the run brings them up to it after its
    write, so the identity holds whichever of the two runs commits first
    (docs/metrics.md#segment-state).
    Definitions: docs/metrics.md#revenue_segments.
    """
    revenue_changed: set[str] = set()
    run = dataclasses.replace(
        REVENUE_SEGMENTS,
        write=functools.partial(write_and_bring_revenue_aggregates_up_to_date, revenue_changed=revenue_changed),
        checks=RUN_CHECKS,
    )
    result = run_aggregate(context, database, cache, run)
    # Committed: the revenue_aggregates rows the run brought up to date are read anew too.
    cache.rows_changed(REVENUE_AGGREGATE_NAME, revenue_changed, log=context.log)
    return dg.MaterializeResult(
        metadata={**(result.metadata or {}), REVENUE_BROUGHT_UP_TO_DATE: len(revenue_changed)},
        check_results=result.check_results,
    )


def touched_segment_days(conn: Connection, committed: state.Committed, before: dt.date) -> set[dt.date]:
    """Days before `before` whose segment rows changed: every day from the earliest day of the
    segment state changes that the `committed` transactions stamped (segment_state_changes) on,
    since MRR carries forward. The absorbs that change the state stamp it, so the segments follow
    the state, not the raw events."""
    first = conn.execute(
        sa.text(f"SELECT min(c.from_day) FROM segment_state_changes AS c WHERE {committed.sql('c')}"),
        committed.params,
    ).scalar_one()
    if first is None:
        return set()
    return {first + dt.timedelta(days=n) for n in range((before - first).days)}
