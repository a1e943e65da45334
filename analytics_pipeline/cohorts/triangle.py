"""What the two retention triangles share, user_cohorts and user_cohort_segments: tables keyed by
(cohort_month, month_number[, dimension, value]) whose partition M holds the rows describing
calendar month M, computed by one statement (sql/aggregate.sql) and replaced month by month by the
same statements (sql/delete_months.sql, sql/touched_rows.sql) with the table's name filled in.
"""

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from ..core import schema
from ..core.months import add_months
from ..core.sql import sql_loader

load = sql_loader(__package__)

# The tables the shared statements may be filled in with, and the temporary table of the rows a
# run wrote that each one's checks read (sql/checks/).
TOUCHED_ROWS = {
    schema.user_cohorts.name: "cohort_touched_rows",
    schema.user_cohort_segments.name: "cohort_segment_touched_rows",
}
_PREPARER = postgresql.dialect().identifier_preparer


def triangle_sql(name: str, table: sa.Table) -> str:
    """sql/<name>.sql with `{table}` replaced by the triangle table's quoted name and
    `{touched_rows}` by its temporary table of written rows."""
    if table.name not in TOUCHED_ROWS:
        raise ValueError(f"{table.name} is not a retention triangle table: {sorted(TOUCHED_ROWS)}")
    return (
        load(name)
        .replace("{table}", _PREPARER.format_table(table))
        .replace("{touched_rows}", _PREPARER.quote(TOUCHED_ROWS[table.name]))
    )


def compute_triangle_rows(conn: Connection, params: dict, rows: str, dimensions: tuple[str, ...]) -> None:
    """The triangle's rows describing a calendar month of [window_start, window_end) for the
    `dimensions` (`all`: user_cohorts'; `first_plan`, `source`: user_cohort_segments'), from the
    state tables, into the temporary table `rows` (sql/aggregate.sql)."""
    conn.execute(sa.text(f"DROP TABLE IF EXISTS pg_temp.{_PREPARER.quote(rows)}"))
    conn.execute(
        sa.text(load("aggregate").replace("{rows}", _PREPARER.quote(rows))),
        {**params, "dimensions": list(dimensions)},
    )


def delete_and_insert(conn: Connection, params: dict, table: sa.Table, insert: str) -> dict[str, object]:
    """Replace every row of `table` describing a calendar month of [window_start, window_end) with
    the computed ones (sql/delete_months.sql, then the table's own `insert` statement)."""
    conn.execute(sa.text(triangle_sql("delete_months", table)), params)
    written, tenants = conn.execute(sa.text(load(insert)), params).one()
    return {"rows_written": written, "tenants": tenants}


def prepare_triangle_checks(conn: Connection, params: dict, table: sa.Table) -> None:
    """The rows of `table` the run wrote (those describing a month of the window), which the rule
    checks read: sql/touched_rows.sql."""
    conn.execute(sa.text(f"DROP TABLE IF EXISTS pg_temp.{_PREPARER.quote(TOUCHED_ROWS[table.name])}"))
    conn.execute(sa.text(triangle_sql("touched_rows", table)), params)


def month_rows_sql(table: sa.Table) -> dict[str, object]:
    """The Aggregate parts of a triangle table: the window's rows, its months without a row, and
    how a window is named."""
    rows = f"""
        SELECT * FROM {_PREPARER.format_table(table)}
        WHERE cohort_month + month_number * interval '1 month' >= CAST(:window_start AS date)
          AND cohort_month + month_number * interval '1 month' < CAST(:window_end AS date)
    """
    return {
        "table": table,
        "window_rows_sql": f"FROM ({rows}) AS r",
        "empty_partitions_sql": (
            "SELECT m::date FROM generate_series(CAST(:window_start AS date), CAST(:window_end AS date) - 1, "
            "interval '1 month') AS m WHERE m::date NOT IN (SELECT (cohort_month + month_number * interval '1 month')::date "
            f"FROM ({rows}) AS r) ORDER BY 1"
        ),
        "describe_window": lambda start, end: f"{start:%Y-%m}..{add_months(end, -1):%Y-%m}",
        "inputs": "signups",
    }
