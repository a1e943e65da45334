"""platform/prisma/schema.prisma is valid and says what the migrations create: for each of the
specification's five tables and the platform's two they reference, every mapped column with its
type, nullability and default, every index with its kind, columns and sort order, and every
foreign key with its referential actions, compared with the catalog of a freshly migrated
database. Only these seven tables are compared: a migration adding another table changes nothing
here, one changing them fails here until the schema says the same.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from analytics_pipeline_tests.platform.conftest import PRISMA_DIR, SCHEMA, node_binary, run_node, schema_dmmf
from analytics_pipeline_tests.platform.shapes import database_shape, differences, schema_shapes

SPEC_TABLES = (
    "organizations",
    "users",
    "analytics_events",
    "revenue_aggregates",
    "user_cohorts",
    "tournament_aggregates",
    "scheduled_reports",
)

# Indexes a Prisma schema cannot declare (NULLS FIRST on an ascending column), as pg_get_indexdef
# prints them; platform/prisma/README.md lists them for the platform's developers.
INDEXES_BEYOND_PRISMA = {
    "analytics_events": {
        "analytics_events_ingest_xid_idx": (
            "CREATE INDEX analytics_events_ingest_xid_idx ON public.analytics_events USING btree (ingest_xid NULLS FIRST)"
        ),
    },
}


def _differences(conn, schema_text: str, dmmf: dict, table: str) -> list[str]:
    database = database_shape(conn, table, INDEXES_BEYOND_PRISMA.get(table, {}))
    if database is None:
        return [f"{table}: not in the migrated database"]
    shapes = schema_shapes(dmmf, schema_text, INDEXES_BEYOND_PRISMA)
    if table not in shapes:
        return [f"{table}: no model of the schema maps to it"]
    return differences(table, database, shapes[table])


def test_the_schema_is_valid_and_maps_exactly_the_seven_tables(dmmf):
    tables = {model.get("dbName") or model["name"] for model in dmmf["datamodel"]["models"]}
    assert tables == set(SPEC_TABLES)


def test_the_dmmf_comes_from_the_schema_engine_the_cli_generates_with():
    """@prisma/prisma-schema-wasm is pinned apart from prisma: the check reads the schema as the
    CLI does only while their WebAssembly engines are the same file; bump the two together."""
    node_binary()  # fails saying what is missing where the packages are not installed
    modules = PRISMA_DIR / "node_modules"
    checked = modules / "@prisma" / "prisma-schema-wasm" / "src" / "prisma_schema_build_bg.wasm"
    generating = modules / "prisma" / "build" / "prisma_schema_build_bg.wasm"
    assert checked.read_bytes() == generating.read_bytes()


def test_an_invalid_schema_is_refused_with_prisma_s_message(tmp_path):
    broken = tmp_path / "schema.prisma"
    broken.write_text(SCHEMA.read_text().replace("@db.Decimal(18, 2)", "@db.Decimal(18, 2, 1)", 1))
    done = run_node([PRISMA_DIR / "check" / "dmmf.mjs", broken])
    assert done.returncode == 1
    assert "is not a valid Prisma schema" in done.stderr and "Decimal" in done.stderr, done.stderr


@pytest.mark.parametrize("table", SPEC_TABLES)
def test_the_schema_says_what_the_migrations_create(engine, dmmf, table):
    with engine.connect() as conn:
        found = _differences(conn, SCHEMA.read_text(), dmmf, table)
    assert not found, "platform/prisma/schema.prisma differs from the migrated database:\n" + "\n".join(found)


# (text of the schema, what replaces it, the table, the difference the check must name)
SCHEMA_CHANGES = [
    pytest.param(
        "mrr                  Decimal      @db.Decimal(18, 2)",
        "mrr                  Decimal      @db.Decimal(10, 2)",
        "revenue_aggregates",
        "revenue_aggregates.mrr: type 'numeric(18,2)' in the database, 'numeric(10,2)' in the schema",
        id="money precision",
    ),
    pytest.param(
        'timestamp(sort: Desc)], map: "analytics_events_tenant_id_timestamp_idx"',
        'timestamp], map: "analytics_events_tenant_id_timestamp_idx"',
        "analytics_events",
        "index analytics_events_tenant_id_timestamp_idx on analytics_events: btree (tenant_id, timestamp DESC) "
        "in the database, btree (tenant_id, timestamp) in the schema",
        id="index sort order",
    ),
    pytest.param(
        "parameters   Json?",
        "parameters   Json ",
        "scheduled_reports",
        "scheduled_reports.parameters: not_null False in the database, True in the schema",
        id="nullability",
    ),
    pytest.param(
        '@default(true) @map("is_active")',
        '@default(false) @map("is_active")',
        "scheduled_reports",
        "scheduled_reports.is_active: default 'true' in the database, 'false' in the schema",
        id="default",
    ),
    pytest.param(
        '@map("event_type") @db.VarChar(100)',
        '@map("event_kind") @db.VarChar(100)',
        "analytics_events",
        "analytics_events.event_type: in the database, not in the schema",
        id="column name",
    ),
    pytest.param(
        'map: "analytics_events_user_id_fkey", onDelete: SetNull',
        'map: "analytics_events_user_id_fkey", onDelete: Cascade',
        "analytics_events",
        "analytics_events: foreign key (user_id) -> users(id) ON DELETE SET NULL ON UPDATE NO ACTION in the "
        "database, not in the schema",
        id="referential action",
    ),
    pytest.param(
        'Unsupported("xid8")?',
        'Unsupported("xid")? ',
        "analytics_events",
        "analytics_events.ingest_xid: type 'xid8' in the database, 'xid' in the schema",
        id="unsupported type",
    ),
    pytest.param(
        '@@unique([tenantId, cohortMonth, monthNumber], map: "user_cohorts_tenant_id_cohort_month_month_number_key")',
        '@@index([tenantId, cohortMonth, monthNumber], map: "user_cohorts_tenant_id_cohort_month_month_number_key")',
        "user_cohorts",
        "index user_cohorts_tenant_id_cohort_month_month_number_key on user_cohorts: UNIQUE btree (tenant_id, "
        "cohort_month, month_number) in the database, btree (tenant_id, cohort_month, month_number) in the schema",
        id="unique constraint",
    ),
]


@pytest.mark.parametrize(("text", "replacement", "table", "expected"), SCHEMA_CHANGES)
def test_a_schema_that_drifts_fails_naming_the_difference(engine, tmp_path, text, replacement, table, expected):
    original = SCHEMA.read_text()
    assert original.count(text) == 1, f"the schema no longer holds {text!r}"
    drifted = tmp_path / "schema.prisma"
    drifted.write_text(original.replace(text, replacement))
    with engine.connect() as conn:
        found = _differences(conn, drifted.read_text(), schema_dmmf(drifted), table)
    assert expected in found, found


# A migration changing the database: (statements, the differences the check must name).
DATABASE_CHANGES = [
    pytest.param(
        [
            "CREATE TABLE a_later_table (id text PRIMARY KEY, "
            "tenant_id text NOT NULL REFERENCES organizations(id) ON DELETE CASCADE, mrr numeric(18,2) NOT NULL)"
        ],
        {},
        id="a new table references organizations",
    ),
    pytest.param(
        ["ALTER TABLE organizations ADD COLUMN currency char(3) NOT NULL DEFAULT 'USD'"],
        {"organizations": ["organizations.currency: in the database, not in the schema"]},
        id="a new column of organizations",
    ),
    pytest.param(
        ["ALTER TABLE user_cohorts ALTER COLUMN ltv TYPE numeric(20,4)"],
        {"user_cohorts": ["user_cohorts.ltv: type 'numeric(20,4)' in the database, 'numeric(18,2)' in the schema"]},
        id="a widened column",
    ),
    pytest.param(
        [
            "DROP INDEX revenue_aggregates_tenant_id_period_start_idx",
            "CREATE INDEX revenue_aggregates_tenant_id_period_start_idx ON revenue_aggregates (tenant_id, period_start)",
        ],
        {
            "revenue_aggregates": [
                "index revenue_aggregates_tenant_id_period_start_idx on revenue_aggregates: btree (tenant_id, "
                "period_start) in the database, btree (tenant_id, period_start DESC) in the schema"
            ]
        },
        id="an index's sort order",
    ),
    pytest.param(
        [
            "DROP INDEX analytics_events_ingest_xid_idx",
            "CREATE INDEX analytics_events_ingest_xid_idx ON analytics_events (ingest_xid)",
        ],
        {
            "analytics_events": [
                "index analytics_events_ingest_xid_idx on analytics_events: CREATE INDEX analytics_events_ingest_xid_idx "
                "ON public.analytics_events USING btree (ingest_xid) in the database, CREATE INDEX "
                "analytics_events_ingest_xid_idx ON public.analytics_events USING btree (ingest_xid NULLS FIRST) in "
                "the schema"
            ]
        },
        id="an index the schema cannot declare",
    ),
]


@pytest.mark.parametrize(("statements", "expected"), DATABASE_CHANGES)
def test_a_migration_that_changes_the_tables_fails_naming_the_difference(engine, dmmf, statements, expected):
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(sa.text(statement))
    schema_text = SCHEMA.read_text()
    with engine.connect() as conn:
        found = {table: _differences(conn, schema_text, dmmf, table) for table in SPEC_TABLES}
    assert {table: lines for table, lines in found.items() if lines} == expected
