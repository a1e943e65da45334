"""Values that fit the columns: a value a run computed that its column cannot hold (or any other
row the write would fail on) must not fail the other tenants.

A run computes its rows into temporary tables without casting them to the column types
(`ComputedRows`), finds every value out of its column's bound in one statement
(`hold_back_out_of_range`), and leaves those tenants' window out of the write: their old rows stay
as they were, every other tenant is written, and the ERROR check `values_fit_columns`
(checks.py) names tenant, period, column and value (docs/operations.md#values-out-of-range).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

# NUMERIC(18,2) holds |value| < 10^16 once rounded to cents (docs/metrics.md#money-columns).
MONEY_BOUND = 10**16
# NUMERIC(10,2) of tournament_aggregates.avg_players.
AVERAGE_BOUND = 10**8
# NUMERIC(5,2) of the rates; they stay within 0..100 by construction, the bound is the column's.
RATE_BOUND = 10**3
# INTEGER columns; the counts are computed as bigint.
COUNT_BOUND = 2**31

# At most this many out-of-range values are named in a check's and a run's metadata.
OUT_OF_RANGE_EXAMPLES = 20


@dataclass(frozen=True)
class ComputedRows:
    """A temporary table of computed rows, not yet cast to the column types, and what bounds each
    of its stored values: `values` are (column, SQL expression over the table's row `r`, bound),
    and a value fits when |value| rounded to cents is below the bound. `period` is an SQL
    expression naming the row's period for people."""

    table: str
    period: str
    values: tuple[tuple[str, str, int], ...]


@dataclass(frozen=True)
class HeldBackTenants:
    """The tenants a run left out of its write, the number of values out of range, and the first
    of them as (tenant_id, period, column, value)."""

    tenants: tuple[str, ...]
    values: int
    examples: tuple[tuple, ...]


def _out_of_range_sql(sources: Iterable[ComputedRows]) -> str:
    selects = []
    for source in sources:
        values = ", ".join(f"('{column}', CAST({value} AS numeric), {bound})" for column, value, bound in source.values)
        # The rows with a value within 1 of its bound or past it, in each value's own type, before
        # any value is cast and rounded: |round(v, 2)| >= bound implies |v| > bound - 1. Written
        # without abs(), which fails on the most negative integer.
        near = " OR ".join(
            f"({value}) <= -{bound - 1} OR ({value}) >= {bound - 1}" for _, value, bound in source.values
        )
        selects.append(
            f"SELECT r.tenant_id, {source.period} AS period, v.column_name, round(v.value, 2) AS value "
            f"FROM pg_temp.{source.table} AS r "
            f"CROSS JOIN LATERAL (VALUES {values}) AS v(column_name, value, bound) "
            f"WHERE ({near}) AND abs(round(v.value, 2)) >= v.bound"
        )
    return (
        "CREATE TEMP TABLE values_out_of_range ON COMMIT DROP AS\n"
        + "\nUNION ALL\n".join(selects)
    )


def hold_back_out_of_range(conn: Connection, sources: tuple[ComputedRows, ...]) -> HeldBackTenants:
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
        return HeldBackTenants((), 0, ())
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
    return HeldBackTenants(tenants, values, tuple(tuple(row) for row in examples))


def no_tenants_held_back(conn: Connection) -> None:
    """An empty `tenants_not_written`, for the rule checks evaluated outside a run."""
    conn.execute(sa.text("CREATE TEMP TABLE IF NOT EXISTS tenants_not_written (tenant_id text) ON COMMIT DROP"))
