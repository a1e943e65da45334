"""As `analytics_app` with `app.tenant_id` set to one tenant, no other tenant's row can be read,
changed, deleted or inserted; with no tenant set nothing is visible."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from analytics_pipeline.db import tenant_scope

from .test_migrations import SPEC_COLUMNS, _insert_tenant_rows

TABLES = list(SPEC_COLUMNS)


@pytest.fixture
def two_tenants(engine):
    with engine.begin() as conn:
        _insert_tenant_rows(conn, "org-a", "user-a")
        _insert_tenant_rows(conn, "org-b", "user-b")
    return engine


@pytest.mark.parametrize("table", TABLES)
def test_tenant_sees_only_its_rows(two_tenants, table):
    with two_tenants.begin() as conn, tenant_scope(conn, "org-a"):
        assert set(conn.execute(sa.text(f"SELECT tenant_id FROM {table}")).scalars()) == {"org-a"}


@pytest.mark.parametrize("table", TABLES)
def test_tenant_cannot_update_or_delete_other_rows(two_tenants, table):
    with two_tenants.begin() as conn, tenant_scope(conn, "org-a"):
        updated = conn.execute(sa.text(f"UPDATE {table} SET id = id WHERE tenant_id = 'org-b'")).rowcount
        deleted = conn.execute(sa.text(f"DELETE FROM {table} WHERE tenant_id = 'org-b'")).rowcount
    assert (updated, deleted) == (0, 0)
    with two_tenants.connect() as conn:
        assert conn.execute(sa.text(f"SELECT count(*) FROM {table} WHERE tenant_id='org-b'")).scalar() == 1


@pytest.mark.parametrize("table", TABLES)
def test_tenant_cannot_move_a_row_to_another_tenant(two_tenants, table):
    with pytest.raises(sa.exc.ProgrammingError, match="row-level security"):
        with two_tenants.begin() as conn, tenant_scope(conn, "org-a"):
            conn.execute(sa.text(f"UPDATE {table} SET tenant_id = 'org-b'"))


def test_tenant_cannot_insert_for_another_tenant(two_tenants):
    with pytest.raises(sa.exc.ProgrammingError, match="row-level security"):
        with two_tenants.begin() as conn, tenant_scope(conn, "org-a"):
            conn.execute(
                sa.text(
                    "INSERT INTO analytics_events (id, tenant_id, event_type, event_data, timestamp) "
                    "VALUES ('x', 'org-b', 'page_view', '{}', now())"
                )
            )


def test_tenant_can_insert_its_own_rows(two_tenants):
    with two_tenants.begin() as conn, tenant_scope(conn, "org-a"):
        conn.execute(
            sa.text(
                "INSERT INTO analytics_events (id, tenant_id, event_type, event_data, timestamp) "
                "VALUES ('x', 'org-a', 'page_view', '{}', now())"
            )
        )
    with two_tenants.connect() as conn:
        assert conn.execute(sa.text("SELECT tenant_id FROM analytics_events WHERE id='x'")).scalar() == "org-a"


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
    with two_tenants.connect() as conn:
        for table in TABLES:
            assert conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar() == 2
