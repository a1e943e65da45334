"""The one run skeleton of every aggregate asset, and the pieces its runs share.

A run of an aggregate (`run_aggregate`): take the partition window, lock the aggregate, record
its time in `aggregate_freshness`, bring the derived states it reads up to date (absorb), replace
the window's rows from those states (write), evaluate the asset checks, and report what it did as
metadata. All of it is one transaction; only after it has committed are the tenants whose rows
changed handed to the `CacheInvalidation` resource the run is given (cache_versions.py), which
advances their data versions: the run knows the key scheme, not the readers built on it.

Which tenants changed is computed in PostgreSQL, not assumed: a digest per tenant of the window's
stored rows before the write and after it (`window_digest_sql`), so a run that rewrote a tenant's
rows with the same values does not count it, and one that inserted, deleted or changed any value
of its rows does. An event-driven run every minute therefore invalidates the API's cache of the
tenants it changed, not of every tenant with rows in its window.

A value the run computed that its column cannot hold (or any other row the write would fail on)
must not fail the other tenants: the run computes its rows into temporary tables without casting
them to the column types, finds every such value in one statement (`hold_back_out_of_range`),
leaves those tenants' window out of the write (their old rows stay as they were), writes every
other tenant, and fails the ERROR check `values_fit_columns` naming tenant, period, column and value
(docs/operations.md#values-out-of-range).

Check convention: a rule check's name is a module constant of its domain, and its SQL is the file
`sql/checks/<name>.sql` of that domain, read when the domain is imported, so a name without its
file (a rename on one side only) fails at import instead of passing forever.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import dagster as dg
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..core.cache_versions import CacheInvalidation
from ..core.resources import AnalyticsDatabase
from .periods import lock_aggregate, window_dates

log = logging.getLogger(__name__)


def collect_window(conn: Connection, table: str, statement: str, params: dict) -> int:
    """Run `statement` (a domain's SQL file), a `CREATE TEMP TABLE <table> ON COMMIT DROP
    AS SELECT ...` over an absorb window's events, and return the rows it collected. PostgreSQL
    reads for CREATE TABLE AS in parallel, never for INSERT ... SELECT. A table of that name left by
    an earlier absorb in the same transaction is dropped first."""
    conn.execute(sa.text(f"DROP TABLE IF EXISTS pg_temp.{table}"))
    return conn.execute(sa.text(statement), params).rowcount


# Per sort or hash node; a backfill's DISTINCT over millions of events otherwise spills to disk.
AGGREGATION_WORK_MEM = "64MB"


def tune_for_aggregation(conn: Connection) -> None:
    """Settings for the rest of the transaction (measured in bench/tournaments_cohorts_bench.py):
    JIT off, because its cost model compiles the inlined event validation of these plans, which
    takes longer (seconds on a busy machine) than the compiled code saves; and a larger work_mem."""
    conn.execute(sa.text("SET LOCAL jit = off"))
    conn.execute(sa.text(f"SET LOCAL work_mem = '{AGGREGATION_WORK_MEM}'"))


def malformed_metadata(rows: Iterable) -> dict[str, object]:
    """Run metadata from (tenant_id, event_type, problem, events) rows."""
    rows = list(rows)
    by_type: Counter[str] = Counter()
    by_tenant_and_type: Counter[str] = Counter()
    by_problem: Counter[str] = Counter()
    for tenant_id, event_type, problem, events in rows:
        by_type[event_type] += events
        by_tenant_and_type[f"{tenant_id}/{event_type}"] += events
        by_problem[f"{event_type}: {problem}"] += events
    return {
        "malformed_events": int(sum(by_type.values())),
        "malformed_events_by_type": dg.MetadataValue.json(dict(sorted(by_type.items()))),
        "malformed_events_by_tenant_and_type": dg.MetadataValue.json(
            dict(sorted(by_tenant_and_type.items()))
        ),
        "malformed_events_by_reason": dg.MetadataValue.json(dict(sorted(by_problem.items()))),
    }


def column_schema(table) -> dg.TableSchema:
    """`dagster/column_schema` of a SQLAlchemy table."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(c.name, str(c.type), description=c.comment)
            for c in table.columns
        ]
    )


def rule_check_result(check_name: str, offending: list[str]) -> dg.AssetCheckResult:
    """An ERROR check over the rows a run wrote: passes when no row breaks the rule."""
    return dg.AssetCheckResult(
        check_name=check_name,
        passed=not offending,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "offending_rows": len(offending),
            "examples": dg.MetadataValue.json(offending[:20]),
        },
    )


def malformed_check_result(check_name: str, malformed: Iterable) -> dg.AssetCheckResult:
    """The WARN check on malformed events in the window, from (tenant_id, event_type, problem,
    events) rows: they were skipped, and here they are counted."""
    metadata = malformed_metadata(malformed)
    return dg.AssetCheckResult(
        check_name=check_name,
        passed=metadata["malformed_events"] == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata=metadata,
    )


# --- asset checks -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleCheck:
    """An ERROR check over the rows a run wrote. `sql` returns one row per offending aggregate
    row: (which row, what is wrong)."""

    name: str
    description: str
    sql: str


def rule_checks(load: Callable[[str], str], descriptions: dict[str, str]) -> tuple[RuleCheck, ...]:
    """The rule checks {name: description} of a domain, each with its `sql/checks/<name>.sql`."""
    return tuple(RuleCheck(name, text, load(f"checks/{name}")) for name, text in descriptions.items())


def check_specs(asset: str, checks: Iterable[RuleCheck], malformed: tuple[str, str]) -> list[dg.AssetCheckSpec]:
    """The asset's check specs: its rule checks, then the WARN check (name, description) on
    malformed events, then `values_fit_columns`."""
    return [
        *(dg.AssetCheckSpec(c.name, asset=asset, description=c.description) for c in checks),
        dg.AssetCheckSpec(malformed[0], asset=asset, description=malformed[1]),
        dg.AssetCheckSpec(VALUES_FIT_COLUMNS, asset=asset, description=VALUES_FIT_COLUMNS_DESCRIPTION),
    ]


def evaluate_checks(
    conn: Connection, checks: Iterable[RuleCheck], params: dict, malformed_check: str, malformed: list
) -> list[dg.AssetCheckResult]:
    results = [
        rule_check_result(c.name, [f"{row}: {why}" for row, why in conn.execute(sa.text(c.sql), params).all()])
        for c in checks
    ]
    return [*results, malformed_check_result(malformed_check, malformed)]


# --- values that do not fit their columns ------------------------------------------------------

VALUES_FIT_COLUMNS = "values_fit_columns"
VALUES_FIT_COLUMNS_DESCRIPTION = (
    "Every value the run computed fits its column. A tenant with one that does not (money at or past "
    "10^16 after rounding to cents, a count past the integer range) is left out of the write, its old "
    "rows kept; the check names tenant, period, column and value."
)

# NUMERIC(18,2) holds |value| < 10^16 once rounded to cents (docs/metrics.md#money-columns).
MONEY_BOUND = 10**16
# NUMERIC(10,2) of tournament_aggregates.avg_players.
AVERAGE_BOUND = 10**8
# NUMERIC(5,2) of the rates; they stay within 0..100 by construction, the bound is the column's.
RATE_BOUND = 10**3
# INTEGER columns; the counts are computed as bigint.
COUNT_BOUND = 2**31


@dataclass(frozen=True)
class ComputedRows:
    """A temporary table of computed rows, not yet cast to the column types, and what bounds each
    of its stored values: `values` are (column, SQL expression over the table's row `r`, bound),
    and a value fits when |value| rounded to cents is below the bound. `period` is an SQL
    expression naming the row's period for people."""

    table: str
    period: str
    values: tuple[tuple[str, str, int], ...]


def _out_of_range_sql(sources: Iterable[ComputedRows]) -> str:
    selects = []
    for source in sources:
        values = ", ".join(f"('{column}', CAST({value} AS numeric), {bound})" for column, value, bound in source.values)
        selects.append(
            f"SELECT r.tenant_id, {source.period} AS period, v.column_name, round(v.value, 2) AS value "
            f"FROM pg_temp.{source.table} AS r "
            f"CROSS JOIN LATERAL (VALUES {values}) AS v(column_name, value, bound) "
            "WHERE abs(round(v.value, 2)) >= v.bound"
        )
    return (
        "CREATE TEMP TABLE values_out_of_range ON COMMIT DROP AS\n"
        + "\nUNION ALL\n".join(selects)
    )


# At most this many out-of-range values are named in a check's and a run's metadata.
OUT_OF_RANGE_EXAMPLES = 20


@dataclass(frozen=True)
class HeldBack:
    """The tenants a run left out of its write, the number of values out of range, and the first
    of them as (tenant_id, period, column, value)."""

    tenants: tuple[str, ...]
    values: int
    examples: tuple[tuple, ...]


def hold_back_out_of_range(conn: Connection, sources: tuple[ComputedRows, ...]) -> HeldBack:
    """Find every computed value that its column cannot hold, in one statement over all of
    `sources`, and remove those tenants' rows from every source, so that the write leaves their
    window untouched. Creates the temporary tables `values_out_of_range` (tenant_id, period,
    column_name, value) and `tenants_not_written` (tenant_id), which the write's deletes read so
    as to keep those tenants' stored rows."""
    conn.execute(sa.text("DROP TABLE IF EXISTS pg_temp.values_out_of_range"))
    conn.execute(sa.text("DROP TABLE IF EXISTS pg_temp.tenants_not_written"))
    conn.execute(sa.text(_out_of_range_sql(sources)))
    conn.execute(
        sa.text(
            "CREATE TEMP TABLE tenants_not_written ON COMMIT DROP AS "
            "SELECT DISTINCT tenant_id FROM values_out_of_range"
        )
    )
    tenants = tuple(conn.execute(sa.text("SELECT tenant_id FROM tenants_not_written ORDER BY 1")).scalars())
    if not tenants:
        return HeldBack((), 0, ())
    for source in sources:
        conn.execute(
            sa.text(f"DELETE FROM pg_temp.{source.table} WHERE tenant_id IN (SELECT tenant_id FROM tenants_not_written)")
        )
    values = conn.execute(sa.text("SELECT count(*) FROM values_out_of_range")).scalar_one()
    examples = conn.execute(
        sa.text(
            "SELECT tenant_id, period, column_name, value FROM values_out_of_range "
            f"ORDER BY 1, 2, 3 LIMIT {OUT_OF_RANGE_EXAMPLES}"
        )
    ).all()
    return HeldBack(tenants, values, tuple(tuple(row) for row in examples))


def no_tenants_held_back(conn: Connection) -> None:
    """An empty `tenants_not_written`, for the rule checks evaluated outside a run."""
    conn.execute(sa.text("CREATE TEMP TABLE IF NOT EXISTS tenants_not_written (tenant_id text) ON COMMIT DROP"))


def values_fit_check_result(held: HeldBack) -> dg.AssetCheckResult:
    """The ERROR check on values no column could hold."""
    return dg.AssetCheckResult(
        check_name=VALUES_FIT_COLUMNS,
        passed=not held.values,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "tenants_not_written": dg.MetadataValue.json(list(held.tenants)),
            "offending_rows": held.values,
            "examples": dg.MetadataValue.json(
                [f"tenant {t}, {period}: {column} = {value}" for t, period, column, value in held.examples]
            ),
        },
    )


def out_of_range_metadata(held: HeldBack) -> dict[str, object]:
    """Run metadata on the tenants left out of the write."""
    return {
        "tenants_not_written": dg.MetadataValue.json(list(held.tenants)),
        "values_out_of_range": held.values,
        "values_out_of_range_examples": dg.MetadataValue.json(
            [
                {"tenant_id": t, "period": period, "column": column, "value": str(value)}
                for t, period, column, value in held.examples
            ]
        ),
    }


# --- the run skeleton ---------------------------------------------------------------------------


def empty_day_partitions_sql(table: str) -> str:
    """`empty_partitions_sql` of an aggregate with day rows: the window's days without one."""
    return (
        "SELECT d::date FROM generate_series(CAST(:window_start AS date), CAST(:window_end AS date) - 1, "
        f"interval '1 day') AS d WHERE d::date NOT IN (SELECT period_start FROM {table} "
        "WHERE period_type = 'day' AND period_start >= :window_start AND period_start < :window_end) ORDER BY 1"
    )


@dataclass(frozen=True)
class StateAbsorb:
    """Bringing one derived state up to date inside the run's transaction; `absorb` returns
    counts for the run's metadata."""

    state: str
    absorb: Callable[[Connection], dict[str, int]]


@dataclass(frozen=True)
class Aggregate:
    """One aggregate asset's parts, run by `run_aggregate` over [window_start, window_end):

    - `write(conn, params)` replaces the window's rows from the states, returns metadata that
      includes `rows_written`;
    - `table` is the aggregate's table (schema.py) and `window_rows_sql` the FROM clause (with
      WHERE, if any) of the window's stored rows, naming the table's row `r`: the rows the write
      may insert, update or delete, digested per tenant before and after it;
    - `empty_partitions_sql` selects the start of every partition of the window left without a
      row (its period had no inputs), so that the metadata names them;
    - `malformed(conn, params)` returns (tenant_id, event_type, problem, events) rows;
    - `checks` are evaluated with `params` after the write (`prepare_checks` first, if any).
    """

    name: str
    absorbs: tuple[StateAbsorb, ...]
    compute: Callable[[Connection, dict], None]
    computed: tuple[ComputedRows, ...]
    write: Callable[[Connection, dict], dict[str, object]]
    table: sa.Table
    window_rows_sql: str
    empty_partitions_sql: str
    malformed: Callable[[Connection, dict], list]
    checks: tuple[RuleCheck, ...]
    malformed_check: str
    describe_window: Callable[[dt.date, dt.date], str]
    prepare_checks: Callable[[Connection, dict], None] | None = None
    inputs: str = field(default="events")  # what the window lacked when it wrote no rows

    def check_stored_rows(self, conn: Connection, window_start: dt.date, window_end: dt.date) -> list[dg.AssetCheckResult]:
        """Evaluate the rule checks and the malformed-events check on the stored rows of the
        periods touching [window_start, window_end), outside a run (no tenant held back)."""
        no_tenants_held_back(conn)
        params = {"window_start": window_start, "window_end": window_end}
        if self.prepare_checks:
            self.prepare_checks(conn, params)
        return evaluate_checks(conn, self.checks, params, self.malformed_check, self.malformed(conn, params))


# Columns every write sets anew whatever the values: a row rewritten unchanged is not a change.
BOOKKEEPING_COLUMNS = frozenset({"created_at", "updated_at"})


def window_digest_sql(aggregate: Aggregate) -> str:
    """Per tenant with rows in the window: how many, and the sum of a 64-bit hash of each row's
    values (every column but the bookkeeping ones, each hashed by its type's own hash function, in
    column order). The sum does not depend on the rows' order, so it needs no sort; two different
    sets of rows of a tenant have the same count and sum with a probability of about 2^-64."""
    values = ", ".join(f'r."{c.name}"' for c in aggregate.table.columns if c.name not in BOOKKEEPING_COLUMNS)
    return (
        "SELECT r.tenant_id, count(*) AS row_count, "
        f"sum(hash_record_extended(ROW({values}), 0)) AS digest "
        f"{aggregate.window_rows_sql} GROUP BY r.tenant_id"
    )


def digest_window(conn: Connection, aggregate: Aggregate, params: dict) -> None:
    """Keep the window's digests before the write, in the temporary table `window_digest_before`."""
    conn.execute(sa.text("DROP TABLE IF EXISTS pg_temp.window_digest_before"))
    conn.execute(
        sa.text(f"CREATE TEMP TABLE window_digest_before ON COMMIT DROP AS {window_digest_sql(aggregate)}"), params
    )


def changed_tenants(conn: Connection, aggregate: Aggregate, params: dict) -> frozenset[str]:
    """The tenants whose window's rows differ from `digest_window`'s: rows inserted, deleted, or
    with a value changed. A tenant held back (values out of range) kept its rows: not among them."""
    return frozenset(
        conn.execute(
            sa.text(
                "SELECT tenant_id FROM window_digest_before AS b "
                f"FULL JOIN ({window_digest_sql(aggregate)}) AS a USING (tenant_id) "
                "WHERE (a.row_count, a.digest) IS DISTINCT FROM (b.row_count, b.digest)"
            ),
            params,
        ).scalars()
    )


def record_freshness(conn: Connection, aggregate: str) -> None:
    """Record in `aggregate_freshness` that a run of `aggregate` is under way, as of now (the clock,
    not the transaction's start, which may be long before the lock was granted): it commits with
    the run, every run moves it forward (whether or not it changed a row), and its rows hold every
    event committed before it. The Dashboard API reads it (docs/api.md#freshness)."""
    conn.execute(
        sa.text(
            "INSERT INTO aggregate_freshness (aggregate, materialized_at) "
            "VALUES (:aggregate, clock_timestamp() AT TIME ZONE 'UTC') "
            "ON CONFLICT (aggregate) DO UPDATE SET materialized_at = EXCLUDED.materialized_at"
        ),
        {"aggregate": aggregate},
    )


def run_aggregate(
    context: dg.AssetExecutionContext, database: AnalyticsDatabase, cache: CacheInvalidation, aggregate: Aggregate
) -> dg.MaterializeResult:
    """One run of an aggregate over its partition window, in one transaction; see the module.
    Once it has committed, `cache` advances the data versions of the tenants whose stored rows
    the run changed (inserted, deleted, or any value other than updated_at different); failing to
    reach Redis is logged and never fails the run."""
    started = time.monotonic()
    window_start, window_end = window_dates(context)
    params = {"window_start": window_start, "window_end": window_end}
    absorbed: dict[str, dict[str, int]] = {}
    with database.transaction() as conn:
        lock_aggregate(conn, aggregate.name)
        # After the lock: a run that waited for another starts its clock once that one committed.
        record_freshness(conn, aggregate.name)
        tune_for_aggregation(conn)
        for step in aggregate.absorbs:
            absorbed[step.state] = step.absorb(conn)
        digest_window(conn, aggregate, params)
        aggregate.compute(conn, params)
        held = hold_back_out_of_range(conn, aggregate.computed)
        written = aggregate.write(conn, params)
        changed = changed_tenants(conn, aggregate, params)
        empty = [str(p) for p in conn.execute(sa.text(aggregate.empty_partitions_sql), params).scalars()]
        malformed = aggregate.malformed(conn, params)
        if aggregate.prepare_checks:
            aggregate.prepare_checks(conn, params)
        checks = evaluate_checks(conn, aggregate.checks, params, aggregate.malformed_check, malformed)
        checks.append(values_fit_check_result(held))
    log.debug("%s committed; rows changed for %d tenants", aggregate.name, len(changed))
    cache.rows_changed(aggregate.name, changed, log=context.log)

    window = aggregate.describe_window(window_start, window_end)
    metadata: dict[str, object] = {"window": window, **written}
    if not written.get("rows_written"):
        # Nothing is skipped: the window was recomputed and had nothing to show.
        metadata["no_rows"] = f"no {aggregate.inputs} in {window}: no rows written"
    metadata["partitions_without_rows"] = len(empty)
    if empty:
        metadata["partitions_without_rows_examples"] = dg.MetadataValue.json(empty[:20])
    metadata["tenants_changed"] = len(changed)
    for counts in absorbed.values():
        metadata.update(counts)
    metadata.update(malformed_metadata(malformed))
    metadata.update(out_of_range_metadata(held))
    metadata["duration_seconds"] = round(time.monotonic() - started, 3)
    return dg.MaterializeResult(metadata=metadata, check_results=checks)
