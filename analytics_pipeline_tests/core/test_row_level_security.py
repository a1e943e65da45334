"""As `analytics_app` with `app.tenant_id` set to one tenant, no other tenant's row can be read,
changed, deleted or inserted, in any table whose rows belong to a tenant; with no tenant set
nothing is visible.

The tables are found in PostgreSQL's catalog (every table with a tenant_id column), so a table
added later without row-level security fails here, and so does one without a sample row below.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from analytics_pipeline.core import migrate
from analytics_pipeline.core.db import engine_for, tenant_scope
from analytics_pipeline.core.schema import TENANT_TABLES

# The platform's tables: not this project's to protect, and analytics_app has no grant on them.
PLATFORM_TABLES = {"organizations", "users"}

# Revision 0009 protects these; the downgrade test checks that it takes exactly this back.
STATE_TABLES = {
    "subscription_events",
    "tournament_history",
    "user_signups",
    "user_activity_months",
    "malformed_events",
}

# Added by revisions after 0009, with their protection: a downgrade to 0008 drops them.
LATER_TABLES = {
    "payment_events", "report_channels", "customer_mrr_days", "tenant_mrr_days", "customer_sources",
    "customer_segment_days", "tenant_segment_days", "segment_state_changes", "revenue_segments",
    "user_cohort_segments",
}

APP_PRIVILEGES = {"SELECT", "INSERT", "UPDATE", "DELETE"}
# Views the application role reads; each is created with security_invoker, so the policies of the
# tables under it apply to the role that queries it.
APP_VIEWS = {"revenue_kpis"}
# Tables without tenant_id that the API reads (SELECT only): they hold no tenant's data.
APP_READ_TABLES = {"aggregate_freshness"}
# Tables keyed by organization_id the API reads (SELECT only), each tenant its own row (revision
# 0023; analytics_pipeline_tests/api/test_api_currency.py tests the policy).
APP_ORGANIZATION_TABLES = {"organization_settings"}
TENANT_MATCHES = "(tenant_id = current_setting('app.tenant_id'::text, true))"  # as pg_policies prints it

# One row of tenant :t per table. :k tells two rows of one tenant apart (their keys differ) and :d
# is the date in the row's unique key (date and timestamp columns take it alike).
ROWS = {
    "analytics_events": (
        "INSERT INTO analytics_events (id, tenant_id, event_type, event_data, timestamp) "
        "VALUES (:t || '-e' || :k, :t, 'page_view', '{}', CAST(:d AS date))"
    ),
    "revenue_aggregates": (
        "INSERT INTO revenue_aggregates (id, tenant_id, period_start, period_end, period_type, mrr, arr, "
        "new_revenue, churned_revenue, expansion_revenue, total_revenue, payment_count, "
        "payment_success_count, refund_count, refund_amount) "
        "VALUES (:t || '-r' || :k, :t, CAST(:d AS date), CAST(:d AS date), 'day', "
        "1, 12, 0, 0, 0, 0, 0, 0, 0, 0)"
    ),
    "user_cohorts": (
        "INSERT INTO user_cohorts (id, tenant_id, cohort_month, cohort_size, month_number, "
        "retained_users, retention_rate, revenue, ltv) "
        "VALUES (:t || '-c' || :k, :t, CAST(:d AS date), 1, 0, 1, 100, 0, 0)"
    ),
    "tournament_aggregates": (
        "INSERT INTO tournament_aggregates (id, tenant_id, period_start, period_end, period_type, "
        "tournament_count, completed_count, completion_rate, total_players, avg_players, revenue) "
        "VALUES (:t || '-t' || :k, :t, CAST(:d AS date), CAST(:d AS date), 'day', 1, 1, 100, 2, 2, 0)"
    ),
    "scheduled_reports": (
        "INSERT INTO scheduled_reports (id, tenant_id, name, report_type, frequency, recipients, "
        "next_run_at) VALUES (:t || '-s' || :k, :t, 'Weekly', 'revenue_summary', 'weekly', "
        "ARRAY['a@example.com'], CAST(:d AS date))"
    ),
    "report_deliveries": (  # for the tenant's report of the first sample rows
        "INSERT INTO report_deliveries (report_id, tenant_id, scheduled_for, status) "
        "VALUES (:t || '-s1', :t, CAST(:d AS date), 'sent')"
    ),
    "report_channels": (
        "INSERT INTO report_channels (id, report_id, tenant_id, kind, url, secret) "
        "VALUES (:t || '-ch' || :k, :t || '-s1', :t, 'webhook', 'https://hooks.example.com/' || :k, 'k')"
    ),
    "subscription_events": (
        "INSERT INTO subscription_events (event_id, tenant_id, user_id, subscription_id, event_type, "
        "occurred_at, monthly_value) "
        "VALUES (:t || '-se' || :k, :t, 'u', 'sub', 'subscription_created', CAST(:d AS date), 10)"
    ),
    "payment_events": (
        "INSERT INTO payment_events (event_id, tenant_id, event_type, occurred_at, amount) "
        "VALUES (:t || '-pe' || :k, :t, 'payment_completed', CAST(:d AS date), 10)"
    ),
    "customer_mrr_days": (
        "INSERT INTO customer_mrr_days (tenant_id, user_id, day, mrr, new_revenue, reactivation_revenue, "
        "expansion_revenue, contraction_revenue, churned_revenue) "
        "VALUES (:t, :t || '-cm' || :k, CAST(:d AS date), 10, 10, 0, 0, 0, 0)"
    ),
    "tenant_mrr_days": (
        "INSERT INTO tenant_mrr_days (tenant_id, day, mrr, new_revenue, reactivation_revenue, "
        "expansion_revenue, contraction_revenue, churned_revenue) "
        "VALUES (:t, CAST(:d AS date), 10, 10, 0, 0, 0, 0)"
    ),
    "customer_sources": (
        "INSERT INTO customer_sources (tenant_id, user_id, source, signed_up_at, event_id) "
        "VALUES (:t, :t || '-cs' || :k, 'ads', CAST(:d AS date), :t || '-e' || :k)"
    ),
    "customer_segment_days": (
        "INSERT INTO customer_segment_days (tenant_id, user_id, dimension, value, day, mrr, new_revenue, "
        "reactivation_revenue, expansion_revenue, contraction_revenue, churned_revenue, transfer_in_revenue, "
        "transfer_out_revenue, active_customers, new_customers, reactivated_customers, churned_customers, "
        "transferred_in_customers, transferred_out_customers) "
        "VALUES (:t, :t || '-csd' || :k, 'plan', 'pro', CAST(:d AS date), 10, 10, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0)"
    ),
    "tenant_segment_days": (
        "INSERT INTO tenant_segment_days (tenant_id, dimension, value, day, mrr, new_revenue, "
        "reactivation_revenue, expansion_revenue, contraction_revenue, churned_revenue, transfer_in_revenue, "
        "transfer_out_revenue, active_customers, new_customers, reactivated_customers, churned_customers, "
        "transferred_in_customers, transferred_out_customers) "
        "VALUES (:t, 'plan', 'pro', CAST(:d AS date), 10, 10, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0)"
    ),
    "segment_state_changes": (
        "INSERT INTO segment_state_changes (tenant_id, from_day) VALUES (:t, CAST(:d AS date))"
    ),
    "revenue_segments": (
        "INSERT INTO revenue_segments (id, tenant_id, period_start, period_end, period_type, dimension, value, "
        "mrr, arr, new_revenue, reactivation_revenue, expansion_revenue, contraction_revenue, churned_revenue, "
        "transfer_in_revenue, transfer_out_revenue, active_customers, new_customers, reactivated_customers, "
        "churned_customers, transferred_in_customers, transferred_out_customers) "
        "VALUES (:t || '-rs' || :k, :t, CAST(:d AS date), CAST(:d AS date), 'day', 'plan', 'pro', "
        "10, 120, 10, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0)"
    ),
    "user_cohort_segments": (
        "INSERT INTO user_cohort_segments (id, tenant_id, cohort_month, month_number, dimension, value, "
        "cohort_size, retained_users, retention_rate, revenue, ltv) "
        "VALUES (:t || '-cs' || :k, :t, CAST(:d AS date), 0, 'source', 'ads', 1, 1, 1, 5, 5)"
    ),
    "tournament_history": (
        "INSERT INTO tournament_history (tenant_id, tournament_id, tournament_day) "
        "VALUES (:t, :t || '-th' || :k, CAST(:d AS date))"
    ),
    "user_signups": (
        "INSERT INTO user_signups (tenant_id, user_id, signed_up_at, cohort_month) "
        "VALUES (:t, :t || '-us' || :k, CAST(:d AS date), CAST(:d AS date))"
    ),
    "user_activity_months": (
        "INSERT INTO user_activity_months (tenant_id, user_id, activity_month) "
        "VALUES (:t, :t || '-ua' || :k, CAST(:d AS date))"
    ),
    "malformed_events": (
        "INSERT INTO malformed_events (event_id, tenant_id, event_type, event_data, timestamp, problem) "
        "VALUES (:t || '-m' || :k, :t, 'payment', '{}', CAST(:d AS date), 'amount is missing')"
    ),
}
TABLES = list(ROWS)
FIRST = {"k": "1", "d": "2025-01-01"}  # the rows the fixture inserts
SECOND = {"k": "2", "d": "2025-02-01"}  # a further row, inserted by a test


def _insert(conn, table: str, tenant: str, row: dict[str, str]) -> None:
    conn.execute(sa.text(ROWS[table]), {"t": tenant, **row})


def _tables_with_tenant_id(conn) -> set[str]:
    return set(
        conn.execute(
            sa.text(
                """
                SELECT c.relname
                FROM pg_class c
                JOIN pg_attribute a
                  ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
                WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
                  AND NOT c.relispartition
                """
            )
        ).scalars()
    )


def _app_privileges(conn, table: str) -> set[str]:
    return {
        privilege
        for privilege in (*APP_PRIVILEGES, "TRUNCATE", "REFERENCES", "TRIGGER")
        if conn.execute(
            sa.text("SELECT has_table_privilege('analytics_app', :t, :p)"),
            {"t": f"public.{table}", "p": privilege},
        ).scalar()
    }


def _protection(conn, table: str):
    """(RLS enabled, RLS forced, the policies as (name, command, roles, using, with check))."""
    enabled, forced = conn.execute(
        sa.text("SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = to_regclass(:t)"),
        {"t": f"public.{table}"},
    ).one()
    policies = conn.execute(
        sa.text(
            "SELECT policyname, cmd, roles::text, qual, with_check FROM pg_policies "
            "WHERE schemaname = 'public' AND tablename = :t"
        ),
        {"t": table},
    ).all()
    return enabled, forced, {tuple(p) for p in policies}


def _isolated(table: str):
    policy = (f"{table}_tenant_isolation", "ALL", "{analytics_app}", TENANT_MATCHES, TENANT_MATCHES)
    return True, False, {policy}


@pytest.fixture
def two_tenants(engine):
    with engine.begin() as conn:
        for tenant in ("org-a", "org-b"):
            conn.execute(sa.text("INSERT INTO organizations (id, name) VALUES (:t, :t)"), {"t": tenant})
            for table in TABLES:
                _insert(conn, table, tenant, FIRST)
    return engine


# --- The catalog: which tables are protected, and how -----------------------------------------


def test_every_table_with_tenant_id_has_row_level_security(engine):
    with engine.connect() as conn:
        tenant_tables = _tables_with_tenant_id(conn) - PLATFORM_TABLES
        for table in sorted(tenant_tables):
            assert _protection(conn, table) == _isolated(table), table
    # Each of them is also exercised by the tests below, and schema.py lists them all.
    assert tenant_tables == set(ROWS)
    assert tenant_tables == {table.name for table in TENANT_TABLES}


def test_application_role_reaches_only_protected_tables(engine):
    with engine.connect() as conn:
        relations = conn.execute(
            sa.text(
                "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace "
                "AND relkind IN ('r', 'p', 'v', 'm', 'f')"
            )
        ).scalars().all()
        granted = {table: _app_privileges(conn, table) for table in relations}
    # TRUNCATE would bypass the policies, so it is never granted.
    assert granted == {
        table: APP_PRIVILEGES if table in ROWS
        else {"SELECT"} if table in APP_VIEWS | APP_READ_TABLES | APP_ORGANIZATION_TABLES else set()
        for table in relations
    }
    assert APP_READ_TABLES <= set(relations)
    assert {"users", "organizations", "state_watermarks"} <= set(relations)


def test_views_apply_the_querying_roles_row_level_security(engine):
    with engine.connect() as conn:
        views = dict(conn.execute(sa.text(
            "SELECT relname, coalesce('security_invoker=true' = ANY(reloptions), false) FROM pg_class "
            "WHERE relnamespace = 'public'::regnamespace AND relkind IN ('v', 'm')"
        )).all())
    assert views == {view: True for view in APP_VIEWS}


def test_downgrade_of_0009_removes_exactly_its_protection(db_url):
    migrate.downgrade(db_url, "0008_retention")
    with engine_for(db_url).connect() as conn:
        for table in STATE_TABLES:
            assert _protection(conn, table) == (False, False, set()), table
            assert _app_privileges(conn, table) == set(), table
        for table in set(ROWS) - STATE_TABLES - LATER_TABLES:
            assert _protection(conn, table) == _isolated(table), table
            assert _app_privileges(conn, table) == APP_PRIVILEGES, table
        assert not _tables_with_tenant_id(conn) & LATER_TABLES
    migrate.upgrade(db_url)
    with engine_for(db_url).connect() as conn:
        for table in STATE_TABLES:
            assert _protection(conn, table) == _isolated(table), table
            assert _app_privileges(conn, table) == APP_PRIVILEGES, table


# --- Behaviour, with rows of two tenants in every table ---------------------------------------


@pytest.mark.parametrize("table", TABLES)
def test_tenant_sees_only_its_rows(two_tenants, table):
    with two_tenants.begin() as conn, tenant_scope(conn, "org-a"):
        assert conn.execute(sa.text(f"SELECT tenant_id FROM {table}")).scalars().all() == ["org-a"]


@pytest.mark.parametrize("table", TABLES)
def test_tenant_cannot_update_or_delete_other_rows(two_tenants, table):
    with two_tenants.begin() as conn, tenant_scope(conn, "org-a"):
        updated = conn.execute(
            sa.text(f"UPDATE {table} SET tenant_id = tenant_id WHERE tenant_id = 'org-b'")
        ).rowcount
        deleted = conn.execute(sa.text(f"DELETE FROM {table} WHERE tenant_id = 'org-b'")).rowcount
    assert (updated, deleted) == (0, 0)
    with two_tenants.connect() as conn:
        assert conn.execute(sa.text(f"SELECT count(*) FROM {table} WHERE tenant_id = 'org-b'")).scalar() == 1


@pytest.mark.parametrize("table", TABLES)
def test_tenant_cannot_move_a_row_to_another_tenant(two_tenants, table):
    with pytest.raises(sa.exc.ProgrammingError, match="row-level security"):
        with two_tenants.begin() as conn, tenant_scope(conn, "org-a"):
            conn.execute(sa.text(f"UPDATE {table} SET tenant_id = 'org-b'"))


@pytest.mark.parametrize("table", TABLES)
def test_tenant_cannot_insert_for_another_tenant(two_tenants, table):
    with pytest.raises(sa.exc.ProgrammingError, match="row-level security"):
        with two_tenants.begin() as conn, tenant_scope(conn, "org-a"):
            _insert(conn, table, "org-b", SECOND)
    with two_tenants.connect() as conn:
        assert conn.execute(sa.text(f"SELECT count(*) FROM {table} WHERE tenant_id = 'org-b'")).scalar() == 1


@pytest.mark.parametrize("table", TABLES)
def test_tenant_can_write_its_own_rows(two_tenants, table):
    with two_tenants.begin() as conn, tenant_scope(conn, "org-a"):
        _insert(conn, table, "org-a", SECOND)
        assert conn.execute(sa.text(f"UPDATE {table} SET tenant_id = tenant_id")).rowcount == 2
    with two_tenants.connect() as conn:
        counts = dict(
            conn.execute(sa.text(f"SELECT tenant_id, count(*) FROM {table} GROUP BY tenant_id")).all()
        )
    assert counts == {"org-a": 2, "org-b": 1}


@pytest.mark.parametrize("table", TABLES)
def test_no_tenant_set_sees_nothing(two_tenants, table):
    with two_tenants.begin() as conn:
        conn.execute(sa.text("SET LOCAL ROLE analytics_app"))
        assert conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar() == 0


def test_tenant_scope_ends_with_the_transaction(two_tenants):
    with two_tenants.connect() as conn:
        with conn.begin(), tenant_scope(conn, "org-a"):
            pass
        # back on the pipeline's own role: every tenant is visible again on the pooled connection
        assert conn.execute(sa.text("SELECT count(DISTINCT tenant_id) FROM analytics_events")).scalar() == 2


def test_pipeline_role_keeps_full_access(two_tenants):
    # RLS is not forced (checked in the catalog above), so the owning role sees every tenant.
    with two_tenants.connect() as conn:
        for table in TABLES:
            assert conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar() == 2, table
