"""The one run skeleton of every aggregate asset, and the pieces its runs share.

A run of an aggregate (`run_aggregate`): take the partition window, lock the aggregate, record
its time in `aggregate_freshness`, bring the derived states it reads up to date (absorb), replace
the window's rows from those states (write), evaluate the asset checks (checks.py), and report
what it did as metadata (metadata.py). All of it is one transaction; only after it has committed
are the tenants whose rows changed handed to the `CacheInvalidation` resource the run is given
(cache_versions.py), which advances their data versions: the run knows the key scheme, not the
readers built on it.

Which tenants changed is computed in PostgreSQL, not assumed: a digest per tenant of the window's
stored rows before the write and after it (`window_digest_sql`), so a run that rewrote a tenant's
rows with the same values does not count it, and one that inserted, deleted or changed any value
of its rows does. An event-driven run every minute therefore invalidates the API's cache of the
tenants it changed, not of every tenant with rows in its window.

A value the run computed that its column cannot hold does not fail the other tenants: the run
computes its rows without casting them and holds back the tenants with such a value (bounds.py).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import dagster as dg
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..core.cache_versions import CacheInvalidation
from ..core.resources import AnalyticsDatabase
from .bounds import ComputedRows, hold_back_out_of_range, no_tenants_held_back
from .checks import RuleCheck, evaluate_checks, values_fit_check_result
from .metadata import run_metadata

log = logging.getLogger(__name__)


def window_dates(context: dg.AssetExecutionContext) -> tuple[dt.date, dt.date]:
    """The run's partition window as dates: [start, end). A single-run backfill of a range gets
    the whole range here."""
    window = context.partition_time_window
    return window.start.date(), window.end.date()


def lock_aggregate(conn: Connection, name: str) -> None:
    """Serialise writers of one aggregate for the rest of the transaction, so that two
    overlapping runs leave the same rows as one run (the second waits, then replaces)."""
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": name})


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


def empty_day_partitions_sql(table: str) -> str:
    """`empty_partitions_sql` of an aggregate with day rows: the window's days without one, as an
    anti-join of the days, which looks each day up by a period index where the table has one
    (revenue_segments') instead of first collecting every day row of the window."""
    return (
        "SELECT d::date FROM generate_series(CAST(:window_start AS date), CAST(:window_end AS date) - 1, "
        f"interval '1 day') AS d WHERE NOT EXISTS (SELECT FROM {table} AS r "
        "WHERE r.period_start = d::date AND r.period_type = 'day') ORDER BY 1"
    )


# Brings one or more derived states up to date inside the run's transaction (states read together
# share one read of the raw events) and returns each one's counts by state name, named as in
# metadata.py.
Absorb = Callable[[Connection], Mapping[str, Mapping[str, int]]]


@dataclass(frozen=True)
class Aggregate:
    """One aggregate asset's parts, run by `run_aggregate` over [window_start, window_end):

    - `absorbs` bring the derived states the aggregate reads up to date, first;
    - `compute(conn, params)` computes the window's rows into the temporary tables `computed`,
      uncast, so that values out of range are held back (bounds.py);
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
    absorbs: tuple[Absorb, ...]
    compute: Callable[[Connection, dict], None]
    computed: tuple[ComputedRows, ...]
    write: Callable[[Connection, dict], dict[str, object]]
    table: sa.Table
    window_rows_sql: str
    empty_partitions_sql: str
    malformed: Callable[[Connection, dict], list]
    checks: tuple[RuleCheck, ...]
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
        return evaluate_checks(conn, self.checks, params, self.malformed(conn, params))


# Columns every write sets anew whatever the values: a row rewritten unchanged is not a change.
BOOKKEEPING_COLUMNS = frozenset({"created_at", "updated_at"})


def window_digest_sql(aggregate: Aggregate, hashed_tenants: str | None = None) -> str:
    """Per tenant with rows in the window: how many, and the sum of a 64-bit hash of each row's
    values (every column but the bookkeeping ones, each hashed by its type's own hash function, in
    column order). The sum does not depend on the rows' order, so it needs no sort; two different
    sets of rows of a tenant have the same count and sum with a probability of about 2^-64.
    With `hashed_tenants` (a table of tenant_id), only those tenants' rows are hashed; the others'
    digest is NULL."""
    values = ", ".join(f'r."{c.name}"' for c in aggregate.table.columns if c.name not in BOOKKEEPING_COLUMNS)
    digest = f"hash_record_extended(ROW({values}), 0)"
    if hashed_tenants is not None:
        digest = f"CASE WHEN r.tenant_id IN (SELECT tenant_id FROM {hashed_tenants}) THEN {digest} END"
    return (
        "SELECT r.tenant_id, count(*) AS row_count, "
        f"sum({digest}) AS digest "
        f"{aggregate.window_rows_sql} GROUP BY r.tenant_id"
    )


def digest_window(conn: Connection, aggregate: Aggregate, params: dict, into: str = "window_digest_before") -> None:
    """Keep the window's digests before the write, in the temporary table `into` (another name
    for a second aggregate written in the same run)."""
    conn.execute(sa.text(f"DROP TABLE IF EXISTS pg_temp.{into}"))
    conn.execute(sa.text(f"CREATE TEMP TABLE {into} ON COMMIT DROP AS {window_digest_sql(aggregate)}"), params)


def changed_tenants(
    conn: Connection, aggregate: Aggregate, params: dict, before: str = "window_digest_before"
) -> frozenset[str]:
    """The tenants whose window's rows differ from `digest_window`'s (kept in `before`): rows
    inserted, deleted, or with a value changed. A tenant held back (values out of range) kept its
    rows: not among them. A tenant that had no rows in the window before has changed if it has
    some now, which its count tells without hashing them (a backfill's million new rows)."""
    return frozenset(
        conn.execute(
            sa.text(
                f"SELECT tenant_id FROM {before} AS b "
                f"FULL JOIN ({window_digest_sql(aggregate, hashed_tenants=before)}) AS a USING (tenant_id) "
                "WHERE (a.row_count, a.digest) IS DISTINCT FROM (b.row_count, b.digest)"
            ),
            params,
        ).scalars()
    )


def recompute_window(conn: Connection, aggregate: Aggregate, params: dict) -> frozenset[str]:
    """Recompute `aggregate`'s window from its states as they are, without absorbing, and write it
    (rows that do not change are left alone), inside the caller's transaction: how a segments run
    brings the aggregate it adds up to up to the state it read. Returns the tenants whose rows
    changed."""
    before = f"{aggregate.name}_digest_before"
    digest_window(conn, aggregate, params, into=before)
    aggregate.compute(conn, params)
    held = hold_back_out_of_range(conn, aggregate.computed)
    aggregate.write(conn, params)
    changed = changed_tenants(conn, aggregate, params, before=before)
    log.info(
        "%s of %s lagged behind the state: rewritten for %d tenant(s)%s",
        aggregate.name, aggregate.describe_window(params["window_start"], params["window_end"]), len(changed),
        f", {len(held.tenants)} held back (values out of range)" if held.tenants else "",
    )
    return changed


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
    absorbed: dict[str, Mapping[str, int]] = {}
    with database.transaction() as conn:
        lock_aggregate(conn, aggregate.name)
        # After the lock: a run that waited for another starts its clock once that one committed.
        record_freshness(conn, aggregate.name)
        tune_for_aggregation(conn)
        for absorb in aggregate.absorbs:
            absorbed.update(absorb(conn))
        digest_window(conn, aggregate, params)
        aggregate.compute(conn, params)
        held = hold_back_out_of_range(conn, aggregate.computed)
        written = aggregate.write(conn, params)
        changed = changed_tenants(conn, aggregate, params)
        empty = [str(p) for p in conn.execute(sa.text(aggregate.empty_partitions_sql), params).scalars()]
        malformed = aggregate.malformed(conn, params)
        if aggregate.prepare_checks:
            aggregate.prepare_checks(conn, params)
        checks = evaluate_checks(conn, aggregate.checks, params, malformed)
        checks.append(values_fit_check_result(held))
    log.debug("%s committed; rows changed for %d tenants", aggregate.name, len(changed))
    cache.rows_changed(aggregate.name, changed, log=context.log)

    metadata = run_metadata(
        window=aggregate.describe_window(window_start, window_end),
        written=written,
        inputs=aggregate.inputs,
        empty_partitions=empty,
        changed=changed,
        absorbed=absorbed,
        malformed=malformed,
        held=held,
        duration_seconds=time.monotonic() - started,
    )
    return dg.MaterializeResult(metadata=metadata, check_results=checks)
