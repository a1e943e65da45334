"""The specification's testing checklist, made executable. Expected values are written from
shared/seed/20251106_add_analytics_tables.md and read back from PostgreSQL's catalog."""

from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner

from analytics_pipeline import cli
from analytics_pipeline.core import db, migrate
from analytics_pipeline.core.schema import metadata

# (column, data type as PostgreSQL formats it, nullable) per the specification.
SPEC_COLUMNS = {
    "analytics_events": [
        ("id", "text", False),
        ("tenant_id", "text", False),
        ("event_type", "character varying(100)", False),
        ("event_data", "jsonb", False),
        ("user_id", "text", True),
        ("session_id", "character varying(255)", True),
        ("timestamp", "timestamp without time zone", False),
        ("created_at", "timestamp without time zone", False),
    ],
    "revenue_aggregates": [
        ("id", "text", False),
        ("tenant_id", "text", False),
        ("period_start", "date", False),
        ("period_end", "date", False),
        ("period_type", "character varying(20)", False),
        ("mrr", "numeric(10,2)", False),
        ("arr", "numeric(10,2)", False),
        ("new_revenue", "numeric(10,2)", False),
        ("churned_revenue", "numeric(10,2)", False),
        ("expansion_revenue", "numeric(10,2)", False),
        ("total_revenue", "numeric(10,2)", False),
        ("payment_count", "integer", False),
        ("payment_success_count", "integer", False),
        ("refund_count", "integer", False),
        ("refund_amount", "numeric(10,2)", False),
        ("updated_at", "timestamp without time zone", False),
    ],
    "user_cohorts": [
        ("id", "text", False),
        ("tenant_id", "text", False),
        ("cohort_month", "date", False),
        ("cohort_size", "integer", False),
        ("month_number", "integer", False),
        ("retained_users", "integer", False),
        ("retention_rate", "numeric(5,2)", False),
        ("revenue", "numeric(10,2)", False),
        ("ltv", "numeric(10,2)", False),
        ("updated_at", "timestamp without time zone", False),
    ],
    "tournament_aggregates": [
        ("id", "text", False),
        ("tenant_id", "text", False),
        ("period_start", "date", False),
        ("period_end", "date", False),
        ("period_type", "character varying(20)", False),
        ("tournament_count", "integer", False),
        ("completed_count", "integer", False),
        ("completion_rate", "numeric(5,2)", False),
        ("total_players", "integer", False),
        ("avg_players", "numeric(10,2)", False),
        ("avg_duration_minutes", "numeric(10,2)", True),
        ("most_popular_format", "character varying(100)", True),
        ("revenue", "numeric(10,2)", False),
        ("updated_at", "timestamp without time zone", False),
    ],
    "scheduled_reports": [
        ("id", "text", False),
        ("tenant_id", "text", False),
        ("name", "character varying(255)", False),
        ("report_type", "character varying(50)", False),
        ("frequency", "character varying(20)", False),
        ("recipients", "text[]", False),
        ("parameters", "jsonb", True),
        ("last_run_at", "timestamp without time zone", True),
        ("next_run_at", "timestamp without time zone", False),
        ("is_active", "boolean", False),
        ("created_at", "timestamp without time zone", False),
        ("updated_at", "timestamp without time zone", False),
    ],
}

# The deviation from the specification at head: revision 0010_wider_money widens the money columns
# (and avg_duration_minutes) to NUMERIC(18,2) (docs/metrics.md#money-columns).
WIDENED = {
    ("revenue_aggregates", name)
    for name in (
        "mrr", "arr", "new_revenue", "churned_revenue", "expansion_revenue", "total_revenue", "refund_amount"
    )
} | {
    ("user_cohorts", "revenue"),
    ("user_cohorts", "ltv"),
    ("tournament_aggregates", "avg_duration_minutes"),
    ("tournament_aggregates", "revenue"),
}

# Index definitions as pg_get_indexdef prints their column part.
SPEC_INDEXES = {
    "analytics_events": {"(tenant_id, event_type)", '(tenant_id, "timestamp" DESC)', '(user_id, "timestamp" DESC)'},
    "revenue_aggregates": {"(tenant_id, period_start DESC)"},
    "user_cohorts": {"(tenant_id, cohort_month DESC)"},
    "tournament_aggregates": {"(tenant_id, period_start DESC)"},
    "scheduled_reports": {"(tenant_id)", "(next_run_at)"},
}

SPEC_UNIQUE = {
    "revenue_aggregates": "(tenant_id, period_type, period_start)",
    "user_cohorts": "(tenant_id, cohort_month, month_number)",
    "tournament_aggregates": "(tenant_id, period_type, period_start)",
}

SPEC_FOREIGN_KEYS = {
    ("analytics_events", "tenant_id", "organizations", "c"),
    ("analytics_events", "user_id", "users", "n"),
    ("revenue_aggregates", "tenant_id", "organizations", "c"),
    ("user_cohorts", "tenant_id", "organizations", "c"),
    ("tournament_aggregates", "tenant_id", "organizations", "c"),
    ("scheduled_reports", "tenant_id", "organizations", "c"),
}


def _columns(conn, table):
    return conn.execute(
        sa.text(
            """
            SELECT a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull
            FROM pg_attribute a
            WHERE a.attrelid = to_regclass(:t) AND a.attnum > 0 AND NOT a.attisdropped
            ORDER BY a.attnum
            """
        ),
        {"t": table},
    ).all()


def _index_columns(conn, table, unique: bool):
    rows = conn.execute(
        sa.text(
            """
            SELECT pg_get_indexdef(i.indexrelid)
            FROM pg_index i
            WHERE i.indrelid = to_regclass(:t) AND NOT i.indisprimary AND i.indisunique = :u
            """
        ),
        {"t": table, "u": unique},
    ).scalars()
    return {definition[definition.index(" USING btree ") + len(" USING btree ") :] for definition in rows}


def test_upgrade_creates_every_column_as_specified(engine):
    with engine.connect() as conn:
        for table, expected in SPEC_COLUMNS.items():
            actual = {name: (typ, nullable) for name, typ, nullable in _columns(conn, table)}
            for name, typ, nullable in expected:
                if (table, name) in WIDENED:
                    assert typ == "numeric(10,2)"
                    typ = "numeric(18,2)"
                assert actual.get(name) == (typ, nullable), f"{table}.{name}"


def test_the_specification_revision_itself_creates_the_specified_columns(empty_db_url):
    migrate.upgrade(empty_db_url, "20251106_add_analytics_tables")
    with db.engine_for(empty_db_url).connect() as conn:
        for table, expected in SPEC_COLUMNS.items():
            assert [tuple(c) for c in _columns(conn, table)] == expected, table


def _money_types(engine) -> dict[str, str]:
    with engine.connect() as conn:
        found = conn.execute(
            sa.text(
                "SELECT table_name || '.' || column_name, format_type(a.atttypid, a.atttypmod) "
                "FROM information_schema.columns c "
                "JOIN pg_attribute a ON a.attrelid = to_regclass(c.table_name) AND a.attname = c.column_name "
                "WHERE c.table_schema = 'public' AND c.data_type = 'numeric'"
            )
        ).all()
    return dict(found)


def test_wider_money_downgrade_narrows_back(db_url, engine):
    migrate.downgrade(db_url, "0009_state_row_level_security")
    types = _money_types(engine)
    assert types["revenue_aggregates.arr"] == "numeric(10,2)"
    assert types["tournament_aggregates.avg_duration_minutes"] == "numeric(10,2)"
    assert types["subscription_events.monthly_value"] == "numeric(12,2)"
    migrate.upgrade(db_url)
    types = _money_types(engine)
    assert types["revenue_aggregates.arr"] == types["subscription_events.monthly_value"] == "numeric(18,2)"
    # exact sums in the state tables stay unbounded: rounding them would change the aggregates
    assert types["tournament_history.revenue"] == types["user_activity_months.revenue"] == "numeric"


def test_wider_money_downgrade_refuses_a_value_that_would_not_fit(db_url, engine):
    with engine.begin() as conn:
        _insert_tenant_rows(conn, "o1", "u1")
        conn.execute(sa.text("UPDATE revenue_aggregates SET arr = 108000000.00"))
    result = CliRunner().invoke(cli.main, ["db", "downgrade", "0009_state_row_level_security"], env={"DATABASE_URL": db_url})
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: downgrade below 0010_wider_money refused: values do not fit the narrower money columns: "
        "revenue_aggregates.arr (1 rows, up to 108000000.00; NUMERIC(10,2) holds < 100,000,000)"
    ]
    # each revision runs in its own transaction: the refused one changed nothing
    assert migrate.current_revision(db_url) == "0010_wider_money"
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT arr FROM revenue_aggregates")).scalar() == Decimal("108000000.00")


def test_primary_keys_are_id(engine):
    with engine.connect() as conn:
        for table in SPEC_COLUMNS:
            pk = sa.inspect(conn).get_pk_constraint(table)
            assert pk["constrained_columns"] == ["id"], table


def test_every_index_exists_with_its_order(engine):
    with engine.connect() as conn:
        for table, expected in SPEC_INDEXES.items():
            assert expected <= _index_columns(conn, table, unique=False), table


def test_unique_constraints_exist(engine):
    with engine.connect() as conn:
        for table, columns in SPEC_UNIQUE.items():
            assert columns in _index_columns(conn, table, unique=True), table


def test_foreign_keys_and_their_delete_actions(engine):
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                """
                SELECT c.conrelid::regclass::text, a.attname, c.confrelid::regclass::text, c.confdeltype
                FROM pg_constraint c
                JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
                WHERE c.contype = 'f'
                """
            )
        ).all()
        assert SPEC_FOREIGN_KEYS <= {tuple(r) for r in rows}
        # every foreign key is valid (not created NOT VALID)
        assert conn.execute(sa.text("SELECT bool_and(convalidated) FROM pg_constraint WHERE contype='f'")).scalar()


def test_schema_module_matches_migrations(engine):
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    # The base revision marks platform tables it created with a comment (see its docstring);
    # schema.py models the tables as the platform has them, without it.
    diff = [d for d in diff if not (d[0] == "remove_table_comment" and d[1].name in {"organizations", "users"})]
    assert diff == []


def test_downgrade_to_base_and_upgrade_again(db_url):
    migrate.downgrade(db_url, "base")
    with db.engine_for(db_url).connect() as conn:
        remaining = set(sa.inspect(conn).get_table_names())
    assert not remaining & set(SPEC_COLUMNS)
    assert not {"organizations", "users"} & remaining  # the base revision created them, so it drops them
    migrate.upgrade(db_url)
    assert migrate.current_revision(db_url) == migrate.head_revision()


def test_spec_revision_downgrade_is_the_rollback(db_url):
    migrate.downgrade(db_url, "0001_platform_tables")
    with db.engine_for(db_url).connect() as conn:
        assert set(sa.inspect(conn).get_table_names()) & set(SPEC_COLUMNS) == set()
        assert {"organizations", "users"} <= set(sa.inspect(conn).get_table_names())


def test_base_revision_leaves_existing_platform_tables_alone(empty_db_url):
    engine = db.engine_for(empty_db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE organizations (id TEXT PRIMARY KEY, name TEXT, plan TEXT)"))
        conn.execute(
            sa.text(
                "CREATE TABLE users (id TEXT PRIMARY KEY, tenant_id TEXT REFERENCES organizations(id) "
                "ON DELETE CASCADE, email TEXT, created_at TIMESTAMP, locale TEXT)"
            )
        )
        conn.execute(sa.text("INSERT INTO organizations VALUES ('o1', 'Org', 'pro')"))
    migrate.upgrade(empty_db_url)
    with engine.connect() as conn:
        assert [c[0] for c in _columns(conn, "organizations")] == ["id", "name", "plan"]
        assert conn.execute(sa.text("SELECT plan FROM organizations")).scalar() == "pro"
    migrate.downgrade(empty_db_url, "base")
    with engine.connect() as conn:
        assert {"organizations", "users"} <= set(sa.inspect(conn).get_table_names())
        assert conn.execute(sa.text("SELECT count(*) FROM organizations")).scalar() == 1


def _insert_tenant_rows(conn, tenant: str, user: str) -> None:
    conn.execute(sa.text("INSERT INTO organizations (id, name) VALUES (:t, :t)"), {"t": tenant})
    conn.execute(sa.text("INSERT INTO users (id, tenant_id) VALUES (:u, :t)"), {"u": user, "t": tenant})
    params = {"t": tenant, "u": user}
    conn.execute(
        sa.text(
            "INSERT INTO analytics_events (id, tenant_id, event_type, event_data, user_id, timestamp) "
            "VALUES (:t || '-e', :t, 'user_signup', '{}', :u, '2025-01-01')"
        ),
        params,
    )
    conn.execute(
        sa.text(
            "INSERT INTO revenue_aggregates (id, tenant_id, period_start, period_end, period_type, mrr, arr, "
            "new_revenue, churned_revenue, expansion_revenue, total_revenue, payment_count, "
            "payment_success_count, refund_count, refund_amount) "
            "VALUES (:t || '-r', :t, '2025-01-01', '2025-01-01', 'day', 1, 12, 0, 0, 0, 0, 0, 0, 0, 0)"
        ),
        params,
    )
    conn.execute(
        sa.text(
            "INSERT INTO user_cohorts (id, tenant_id, cohort_month, cohort_size, month_number, retained_users, "
            "retention_rate, revenue, ltv) VALUES (:t || '-c', :t, '2025-01-01', 1, 0, 1, 100, 0, 0)"
        ),
        params,
    )
    conn.execute(
        sa.text(
            "INSERT INTO tournament_aggregates (id, tenant_id, period_start, period_end, period_type, "
            "tournament_count, completed_count, completion_rate, total_players, avg_players, revenue) "
            "VALUES (:t || '-t', :t, '2025-01-01', '2025-01-01', 'day', 1, 1, 100, 2, 2, 0)"
        ),
        params,
    )
    conn.execute(
        sa.text(
            "INSERT INTO scheduled_reports (id, tenant_id, name, report_type, frequency, recipients, next_run_at) "
            "VALUES (:t || '-s', :t, 'Weekly', 'revenue_summary', 'weekly', ARRAY['a@example.com'], now())"
        ),
        params,
    )


def test_deleting_an_organization_cascades_to_all_five_tables(engine):
    with engine.begin() as conn:
        _insert_tenant_rows(conn, "org-a", "user-a")
        _insert_tenant_rows(conn, "org-b", "user-b")
        conn.execute(sa.text("DELETE FROM organizations WHERE id = 'org-a'"))
    with engine.connect() as conn:
        for table in SPEC_COLUMNS:
            tenants = set(conn.execute(sa.text(f"SELECT DISTINCT tenant_id FROM {table}")).scalars())
            assert tenants == {"org-b"}, table


def test_deleting_a_user_keeps_the_event_without_user(engine):
    with engine.begin() as conn:
        _insert_tenant_rows(conn, "org-a", "user-a")
        conn.execute(sa.text("DELETE FROM users WHERE id = 'user-a'"))
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT user_id FROM analytics_events")).one() == (None,)


@pytest.mark.parametrize(
    "table, key_columns, update",
    [
        ("revenue_aggregates", "(tenant_id, period_type, period_start)", "mrr = 5"),
        ("user_cohorts", "(tenant_id, cohort_month, month_number)", "cohort_size = 5"),
        ("tournament_aggregates", "(tenant_id, period_type, period_start)", "tournament_count = 5"),
    ],
)
def test_upsert_on_unique_key_updates_instead_of_failing(engine, table, key_columns, update):
    with engine.begin() as conn:
        _insert_tenant_rows(conn, "org-a", "user-a")
        row = conn.execute(sa.text(f"SELECT * FROM {table}")).mappings().one()
        columns = [c for c in row.keys()]
        values = {**row, "id": "another-id"}
        conn.execute(
            sa.text(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)}) "
                f"ON CONFLICT {key_columns} DO UPDATE SET {update}"
            ),
            values,
        )
    with engine.connect() as conn:
        rows = conn.execute(sa.text(f"SELECT id FROM {table}")).scalars().all()
        assert rows == [row["id"]]
        assert conn.execute(sa.text(f"SELECT {update.split(' = ')[0]} FROM {table}")).scalar() == 5


def test_created_at_defaults_to_utc_whatever_the_session_time_zone(engine):
    with engine.begin() as conn:
        _insert_tenant_rows(conn, "org-a", "user-a")
        conn.execute(sa.text("SET LOCAL TIME ZONE 'America/New_York'"))
        conn.execute(
            sa.text(
                "INSERT INTO analytics_events (id, tenant_id, event_type, event_data, timestamp) "
                "VALUES ('ny', 'org-a', 'page_view', '{}', now())"
            )
        )
        lag = conn.execute(
            sa.text(
                "SELECT extract(epoch FROM (now() AT TIME ZONE 'UTC') - created_at) "
                "FROM analytics_events WHERE id = 'ny'"
            )
        ).scalar()
    assert abs(lag) < 60


def test_pipeline_sessions_run_in_utc(engine):
    with engine.connect() as conn:
        assert conn.execute(sa.text("SHOW TimeZone")).scalar() == "UTC"
