"""revenue_segments' tenant is an organization, checked once per statement by the triggers of
revision 0027 instead of a foreign key's check per row: every guarantee of the foreign key it
replaced (ON DELETE CASCADE, NO ACTION on update), including a deletion that races a write."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

# `days` day rows from 2025-03-01 for each tenant of `t`, in one statement.
INSERT_ROW = (
    "INSERT INTO revenue_segments (id, tenant_id, period_start, period_end, period_type, dimension, value, "
    "mrr, arr, new_revenue, reactivation_revenue, expansion_revenue, contraction_revenue, churned_revenue, "
    "transfer_in_revenue, transfer_out_revenue, active_customers, new_customers, reactivated_customers, "
    "churned_customers, transferred_in_customers, transferred_out_customers) "
    "SELECT o.t || ':day:' || x.d || ':plan:pro', o.t, x.d, x.d, 'day', 'plan', 'pro', "
    "10, 120, 10, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0 "
    "FROM unnest(CAST(%(t)s AS text[])) AS o(t), generate_series(0, %(days)s - 1) AS n, "
    "LATERAL (SELECT DATE '2025-03-01' + n AS d) AS x"
)


def _connect(db_url: str, autocommit: bool = False) -> psycopg.Connection:
    url = make_url(db_url).set(drivername="postgresql").render_as_string(hide_password=False)
    return psycopg.connect(url, autocommit=autocommit)


@pytest.fixture
def tenants(db_url):
    with _connect(db_url) as conn:
        conn.execute("INSERT INTO organizations (id, name) VALUES ('org-a', 'A'), ('org-b', 'B')")
    return db_url


def _tenants_with_rows(db_url: str) -> dict[str, int]:
    with _connect(db_url) as conn:
        return dict(conn.execute("SELECT tenant_id, count(*) FROM revenue_segments GROUP BY 1 ORDER BY 1").fetchall())


def test_a_row_of_an_organization_that_does_not_exist_is_refused_and_named(tenants):
    with _connect(tenants) as conn:
        conn.execute(INSERT_ROW, {"t": ["org-a"], "days": 3})
        with pytest.raises(psycopg.errors.ForeignKeyViolation, match="org-gone"):
            # One statement with rows of an existing organization and of a missing one.
            conn.execute(INSERT_ROW, {"t": ["org-b", "org-gone"], "days": 2})
        conn.rollback()
    assert _tenants_with_rows(tenants) == {}


def test_a_row_moved_to_an_organization_that_does_not_exist_is_refused(tenants):
    with _connect(tenants) as conn:
        conn.execute(INSERT_ROW, {"t": ["org-a"], "days": 2})
        conn.commit()
        with pytest.raises(psycopg.errors.ForeignKeyViolation, match="org-gone"):
            conn.execute("UPDATE revenue_segments SET tenant_id = 'org-gone' WHERE period_start = DATE '2025-03-02'")
        conn.rollback()
        conn.execute("UPDATE revenue_segments SET tenant_id = 'org-b' WHERE period_start = DATE '2025-03-02'")
        conn.commit()
    assert _tenants_with_rows(tenants) == {"org-a": 1, "org-b": 1}


def test_deleting_an_organization_deletes_its_rows_only(tenants):
    with _connect(tenants) as conn:
        conn.execute(INSERT_ROW, {"t": ["org-a"], "days": 5})
        conn.execute(INSERT_ROW, {"t": ["org-b"], "days": 3})
        conn.commit()
        conn.execute("DELETE FROM organizations WHERE id = 'org-a'")
        conn.commit()
    assert _tenants_with_rows(tenants) == {"org-b": 3}


def test_an_organization_id_its_rows_name_cannot_change_but_its_name_can(tenants):
    with _connect(tenants) as conn:
        conn.execute(INSERT_ROW, {"t": ["org-a"], "days": 2})
        conn.commit()
        with pytest.raises(psycopg.errors.ForeignKeyViolation, match="org-a"):
            conn.execute("UPDATE organizations SET id = 'org-z' WHERE id = 'org-a'")
        conn.rollback()
        conn.execute("UPDATE organizations SET name = 'A renamed' WHERE id = 'org-a'")
        conn.execute("UPDATE organizations SET id = 'org-y' WHERE id = 'org-b'")  # no rows name it
        conn.commit()
    assert _tenants_with_rows(tenants) == {"org-a": 2}


def test_truncating_organizations_with_cascade_empties_the_table(tenants):
    with _connect(tenants) as conn:
        conn.execute(INSERT_ROW, {"t": ["org-a"], "days": 2})
        conn.commit()
        conn.execute("TRUNCATE organizations CASCADE")
        conn.commit()
    assert _tenants_with_rows(tenants) == {}


def test_a_writer_without_rights_on_organizations_writes_its_own_tenant(tenants):
    """The pipeline's role under row-level security has no grant on the platform's tables; the
    check runs as its owner, as a foreign key's does."""
    with _connect(tenants) as conn:
        conn.execute("SET ROLE analytics_app")
        conn.execute("SELECT set_config('app.tenant_id', 'org-a', false)")
        conn.execute(INSERT_ROW, {"t": ["org-a"], "days": 2})
        conn.commit()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT count(*) FROM organizations")
        conn.rollback()
    assert _tenants_with_rows(tenants) == {"org-a": 2}


def _in_thread(target) -> tuple[threading.Thread, dict]:
    outcome: dict = {}

    def run():
        try:
            outcome["result"] = target()
        except Exception as error:  # noqa: BLE001 - the test reads it
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def _waits_on_a_lock(db_url: str, application_name: str) -> bool:
    deadline = time.monotonic() + 10
    # Autocommit: within a transaction pg_stat_activity stays as it was first read.
    with _connect(db_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(
                "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE application_name = %s",
                (application_name,),
            ).fetchone()
            if waiting and waiting[0]:
                return True
            time.sleep(0.05)
    return False


def test_a_deletion_during_a_write_waits_for_it_and_then_deletes_its_rows(tenants):
    writer = _connect(tenants)
    writer.execute(INSERT_ROW, {"t": ["org-a"], "days": 4})  # not committed: org-a is locked

    def delete():
        with _connect(tenants) as conn:
            conn.execute("SET application_name = 'deleter'")
            conn.execute("DELETE FROM organizations WHERE id = 'org-a'")

    thread, outcome = _in_thread(delete)
    assert _waits_on_a_lock(tenants, "deleter")
    writer.commit()
    writer.close()
    thread.join(10)
    assert not thread.is_alive() and "error" not in outcome
    assert _tenants_with_rows(tenants) == {}


def test_a_write_during_a_deletion_waits_for_it_and_is_then_refused(tenants):
    deleter = _connect(tenants)
    deleter.execute("DELETE FROM organizations WHERE id = 'org-a'")  # not committed

    def write():
        with _connect(tenants) as conn:
            conn.execute("SET application_name = 'writer'")
            conn.execute(INSERT_ROW, {"t": ["org-a"], "days": 4})

    thread, outcome = _in_thread(write)
    assert _waits_on_a_lock(tenants, "writer"), outcome
    deleter.commit()
    deleter.close()
    thread.join(10)
    assert not thread.is_alive()
    assert isinstance(outcome.get("error"), psycopg.errors.ForeignKeyViolation)
    assert _tenants_with_rows(tenants) == {}


def test_the_write_waits_for_nothing_when_the_deletion_is_rolled_back(tenants):
    deleter = _connect(tenants)
    deleter.execute("DELETE FROM organizations WHERE id = 'org-a'")

    def write():
        with _connect(tenants) as conn:
            conn.execute("SET application_name = 'writer'")
            conn.execute(INSERT_ROW, {"t": ["org-a"], "days": 4})

    thread, outcome = _in_thread(write)
    assert _waits_on_a_lock(tenants, "writer")
    deleter.rollback()
    deleter.close()
    thread.join(10)
    assert not thread.is_alive() and "error" not in outcome
    assert _tenants_with_rows(tenants) == {"org-a": 4}


def test_the_foreign_key_is_gone_and_the_triggers_are_there(engine):
    with engine.connect() as conn:
        foreign_keys = conn.execute(sa.text(
            "SELECT count(*) FROM pg_constraint WHERE conrelid = 'revenue_segments'::regclass AND contype = 'f'"
        )).scalar_one()
        triggers = set(conn.execute(sa.text(
            "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgenabled = 'O' "
            "AND tgrelid IN ('revenue_segments'::regclass, 'organizations'::regclass)"
        )).scalars())
    assert foreign_keys == 0
    assert triggers == {
        "revenue_segments_tenant_exists_on_insert", "revenue_segments_tenant_exists_on_update",
        "organizations_delete_revenue_segments", "organizations_update_revenue_segments",
        "organizations_truncate_revenue_segments",
    }
