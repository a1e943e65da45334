"""How a table of schema.py shows in Dagster: the asset metadata that names it and describes its
columns, from the one SQLAlchemy definition, so the UI says what psql's \\d+ and the docs say
(the column descriptions are in schema.py)."""

from __future__ import annotations

import dagster as dg
import sqlalchemy as sa


def column_schema(table: sa.Table) -> dg.TableSchema:
    """`dagster/column_schema` of a SQLAlchemy table: each column's name, type and description."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(c.name, str(c.type), description=c.comment)
            for c in table.columns
        ]
    )


def table_metadata(table: sa.Table, *, columns: bool = True) -> dict[str, object]:
    """The metadata of the asset that is `table` (or view): `dagster/table_name` and, unless
    `columns` is False (a platform table whose columns schema.py does not describe),
    `dagster/column_schema`."""
    metadata: dict[str, object] = {"dagster/table_name": f"public.{table.name}"}
    if columns:
        metadata["dagster/column_schema"] = column_schema(table)
    return metadata
