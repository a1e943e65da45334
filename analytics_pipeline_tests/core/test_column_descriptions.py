"""Every column of every table an asset shows has a one-line description in the UI, kept once in
analytics_pipeline/core/schema.py, put on the database as its COMMENT, and ending with the docs section
that defines it; every docs section cited, there or in the SQL, exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from analytics_pipeline.core import schema
from analytics_pipeline.definitions import defs

ROOT = Path(__file__).resolve().parents[2]
AGGREGATES = ("revenue_aggregates", "tournament_aggregates", "user_cohorts")
TABLES = {**schema.metadata.tables, **schema.views.tables}
# "(docs/metrics.md#mrr-movements)" at the end of a description.
CITATION_AT_END = re.compile(r"\((docs/[a-z_]+\.md)#([a-z0-9_-]+)\)$")
CITATION = re.compile(r"(docs/[a-z_]+\.md)#([A-Za-z0-9_-]+)")


def _slug(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(doc: str) -> set[str]:
    lines = (ROOT / doc).read_text().splitlines()
    return {_slug(line.lstrip("#")) for line in lines if re.match(r"#{1,6} ", line)}


def test_slug_is_githubs():
    assert _slug("## `created_at`, late events and its index".lstrip("#")) == "created_at-late-events-and-its-index"
    assert _slug(" MRR movements") == "mrr-movements"
    assert _slug(" revenue_aggregates") == "revenue_aggregates"


def _column_schemas() -> dict[str, tuple[str, list]]:
    """{asset: (table, columns of its dagster/column_schema)}."""
    out = {}
    for spec in defs.resolve_all_asset_specs():
        column_schema = spec.metadata.get("dagster/column_schema")
        if column_schema is not None:
            table = spec.metadata["dagster/table_name"].removeprefix("public.")
            out[spec.key.to_user_string()] = (table, list(column_schema.columns))
    return out


def test_every_aggregate_and_state_asset_has_a_column_schema():
    schemas = _column_schemas()
    assert {*AGGREGATES, "revenue_kpis"} <= set(schemas)
    for asset in ("subscription_history", "payment_history", "tournament_history", "user_signups",
                  "user_activity_months", "analytics_events"):
        assert asset in schemas


def test_every_column_of_every_asset_has_a_one_line_description_citing_its_definition():
    for asset, (table, columns) in _column_schemas().items():
        assert [c.name for c in columns] == list(TABLES[table].c.keys()), asset
        for column in columns:
            text = column.description
            assert text and text.strip() == text and "\n" not in text, f"{asset}.{column.name}: {text!r}"
            assert len(text) <= 160, f"{asset}.{column.name} is longer than a line"
            assert CITATION_AT_END.search(text), f"{asset}.{column.name} does not end with its docs section"


@pytest.mark.parametrize("table", [*AGGREGATES, "revenue_kpis", "subscription_events", "payment_events",
                                   "tournament_history"])
def test_aggregate_columns_cite_metrics_md(table):
    for column in TABLES[table].columns:
        doc, _ = CITATION_AT_END.search(column.comment).groups()
        assert doc == "docs/metrics.md", f"{table}.{column.name}"


def test_every_cited_docs_section_exists():
    """Column descriptions, SQL and code cite docs sections as docs/<file>.md#<anchor>; each must
    be a heading of that file."""
    cited: dict[tuple[str, str], str] = {}
    for table in TABLES.values():
        for column in table.columns:
            for doc, anchor in CITATION.findall(column.comment or ""):
                cited[(doc, anchor)] = f"{table.name}.{column.name}"
    for path in sorted((ROOT / "analytics_pipeline").rglob("*")):
        if path.suffix in {".sql", ".py", ".js", ".html"}:
            for doc, anchor in CITATION.findall(path.read_text()):
                cited.setdefault((doc, anchor), str(path.relative_to(ROOT)))
    anchors = {doc: _anchors(doc) for doc, _ in cited}
    missing = sorted(f"{doc}#{anchor} (cited by {where})" for (doc, anchor), where in cited.items()
                     if anchor not in anchors[doc])
    assert not missing, missing


def test_descriptions_are_the_database_comments(engine):
    with engine.connect() as conn:
        stored = {
            (table, column): comment
            for table, column, comment in conn.execute(sa.text(
                "SELECT c.relname, a.attname, col_description(a.attrelid, a.attnum) FROM pg_attribute AS a "
                "JOIN pg_class AS c ON c.oid = a.attrelid JOIN pg_namespace AS n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v') AND a.attnum > 0 AND NOT a.attisdropped"
            ))
        }
    described = {
        (table.name, column.name): column.comment
        for table in TABLES.values() for column in table.columns if column.comment
    }
    assert {key: stored.get(key) for key in described} == described
    for table in (*AGGREGATES, "revenue_kpis"):
        assert all(stored[(table, c.name)] for c in TABLES[table].columns), table


def test_the_views_model_has_the_views_columns(engine):
    """schema.py models each view for its descriptions; alembic does not compare views, so this does."""
    with engine.connect() as conn:
        for table in schema.views.tables.values():
            columns = conn.execute(sa.text(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' "
                "AND table_name = :t ORDER BY ordinal_position"), {"t": table.name}).scalars().all()
            assert columns == list(table.c.keys()), table.name
