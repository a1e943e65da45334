"""Pieces the runs of the aggregate assets share: the run config, which part of
a window is recomputed once raw events have been purged, reading an absorb window's events into a
table, and malformed event counts."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable

import dagster as dg
import sqlalchemy as sa
from pydantic import Field
from sqlalchemy.engine import Connection

from .settings import retention_cutoff


class AggregateRunConfig(dg.Config):
    """Run config of an aggregate asset."""

    recompute_before_retention_cutoff: bool = Field(
        default=False,
        description=(
            "Recompute partitions that end before the retention cutoff too. By default their "
            "stored rows are kept, because the raw events behind them may have been purged."
        ),
    )


def recompute_start(
    window_start: dt.date, window_end: dt.date, force: bool, now: dt.datetime | None = None
) -> dt.date:
    """First day of [window_start, window_end) that the run recomputes.

    Partitions ending on or before the retention cutoff lie wholly in purged territory; their
    stored rows are kept unless `force`. Partition boundaries always fall on the day boundaries
    passed in, so the returned start is a partition boundary when the caller rounds it to one.
    """
    if force:
        return window_start
    cutoff = retention_cutoff(now).date()
    return min(max(window_start, cutoff), window_end)


def log_kept_rows(context: dg.AssetExecutionContext, kept: str) -> None:
    """Say in the run's log which partitions of the window `recompute_start` left out."""
    context.log.info(
        f"{kept} lie before the retention cutoff: their raw events may be purged, so their stored "
        "rows are kept (set recompute_before_retention_cutoff to recompute them)"
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
