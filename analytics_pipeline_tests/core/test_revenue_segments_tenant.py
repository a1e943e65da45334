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
        conn.execute("INSERT INTO organizations (id, name) VALUES ('org-c', 'C'), ('org-d', 'D'), ('org-e', 'E')")
        with pytest.raises(psycopg.errors.ForeignKeyViolation, match="org-gone"):
            # One statement with rows of existing organizations and of a missing one.
            conn.execute(INSERT_ROW, {"t": ["org-b", "org-c", "org-gone", "org-d", "org-e"], "days": 2})
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


def _blocked_until_ended(db_url: str, statement: str, params: dict, holder: psycopg.Connection, end: str) -> dict:
    """Run `statement` on a connection of its own while `holder`'s transaction is open; once it
    waits on a lock, end `holder`'s transaction (`end`: commit or rollback). Returns its outcome:
    {"result": ...} or {"error": ...}."""

    def run():
        with _connect(db_url) as conn:
            conn.execute("SET application_name = 'blocked'")
            conn.execute(statement, params)

    thread, outcome = _in_thread(run)
    assert _waits_on_a_lock(db_url, "blocked"), outcome
    getattr(holder, end)()
    holder.close()
    thread.join(10)
    assert not thread.is_alive()
    return outcome


def test_a_deletion_during_a_write_waits_for_it_and_then_deletes_its_rows(tenants):
    writer = _connect(tenants)
    writer.execute(INSERT_ROW, {"t": ["org-a"], "days": 4})  # not committed: org-a is locked
    outcome = _blocked_until_ended(tenants, "DELETE FROM organizations WHERE id = 'org-a'", {}, writer, "commit")
    assert "error" not in outcome
    assert _tenants_with_rows(tenants) == {}


def test_a_write_during_a_deletion_waits_for_it_and_is_then_refused(tenants):
    deleter = _connect(tenants)
    deleter.execute("DELETE FROM organizations WHERE id = 'org-a'")  # not committed
    outcome = _blocked_until_ended(tenants, INSERT_ROW, {"t": ["org-a"], "days": 4}, deleter, "commit")
    assert isinstance(outcome.get("error"), psycopg.errors.ForeignKeyViolation)
    assert _tenants_with_rows(tenants) == {}


def test_the_write_waits_for_nothing_when_the_deletion_is_rolled_back(tenants):
    deleter = _connect(tenants)
    deleter.execute("DELETE FROM organizations WHERE id = 'org-a'")
    outcome = _blocked_until_ended(tenants, INSERT_ROW, {"t": ["org-a"], "days": 4}, deleter, "rollback")
    assert "error" not in outcome
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
        "revenue_segments_tenant_exists_on_insert", "revenue_segments_tenant_moved_on_update",
        "organizations_delete_revenue_segments", "organizations_update_revenue_segments",
        "organizations_truncate_revenue_segments",
    }


def test_a_deletion_during_the_update_of_its_rows_in_a_longer_statement_does_not_deadlock(tenants):
    """The pipeline's upsert (upsert_rows.sql) updates a tenant's stored rows in a CTE and inserts
    the new ones in the same statement; a backfill's takes seconds. An organization deleted while
    that statement runs waits for the writing transaction, then deletes its rows, as ON DELETE
    CASCADE did: an update that keeps the rows' tenant checks nothing (as the foreign key's did
    not), so that it does not wait, at the end of its statement, for the organization whose
    deletion waits for the rows it updated. An advisory lock holds the statement open between
    its update and its end."""
    with _connect(tenants) as conn:
        conn.execute(INSERT_ROW, {"t": ["org-a"], "days": 3})
        conn.commit()
    gate = _connect(tenants, autocommit=True)
    gate.execute("SELECT pg_advisory_lock(27)")

    def write():
        with _connect(tenants) as conn:
            conn.execute("SET application_name = 'writer'")
            conn.execute(
                "WITH updated AS (UPDATE revenue_segments SET mrr = mrr + 1 WHERE tenant_id = 'org-a' RETURNING 1) "
                "SELECT pg_advisory_xact_lock(27) FROM (SELECT count(*) FROM updated) AS u"
            )

    def delete():
        with _connect(tenants) as conn:
            conn.execute("SET application_name = 'deleter'")
            conn.execute("DELETE FROM organizations WHERE id = 'org-a'")

    writing, written = _in_thread(write)
    assert _waits_on_a_lock(tenants, "writer")  # the rows are updated, the statement not ended
    deleting, deleted = _in_thread(delete)
    assert _waits_on_a_lock(tenants, "deleter")
    gate.execute("SELECT pg_advisory_unlock(27)")
    gate.close()
    writing.join(10)
    deleting.join(10)
    assert not writing.is_alive() and not deleting.is_alive()
    assert "error" not in written and "error" not in deleted, (written, deleted)
    assert _tenants_with_rows(tenants) == {}


def test_a_deletion_during_a_move_of_rows_to_it_waits_for_it_and_then_deletes_them(tenants):
    """A row moved to another organization locks that organization, as the foreign key's check of
    a changed key did: its deletion waits for the move and then deletes the moved row."""
    with _connect(tenants) as conn:
        conn.execute(INSERT_ROW, {"t": ["org-a"], "days": 2})
        conn.commit()
    mover = _connect(tenants)
    mover.execute("UPDATE revenue_segments SET tenant_id = 'org-b' WHERE period_start = DATE '2025-03-02'")
    outcome = _blocked_until_ended(tenants, "DELETE FROM organizations WHERE id = 'org-b'", {}, mover, "commit")
    assert "error" not in outcome
    assert _tenants_with_rows(tenants) == {"org-a": 1}


def test_every_statement_shape_is_checked(tenants):
    """The pipeline's shape (an UPDATE in a CTE, then an INSERT: each fills its own transition
    table), INSERT ... ON CONFLICT DO UPDATE, MERGE and COPY: a row naming an organization that
    does not exist is refused whichever of them writes it."""
    with _connect(tenants) as conn:
        conn.execute(INSERT_ROW, {"t": ["org-a"], "days": 2})
        conn.commit()
        insert_b = INSERT_ROW.replace("%(t)s", "ARRAY['org-b']").replace("%(days)s", "1")
        insert_gone = INSERT_ROW.replace("%(t)s", "ARRAY['org-gone']").replace("%(days)s", "1")
        statements = [
            # The CTE's update moves a row to a missing organization; the insert is fine.
            "WITH updated AS (UPDATE revenue_segments SET tenant_id = 'org-gone' "
            "WHERE period_start = DATE '2025-03-02' RETURNING 1) " + insert_b,
            # The CTE's update is fine; the insert names a missing organization.
            "WITH updated AS (UPDATE revenue_segments SET mrr = mrr + 1 RETURNING 1) " + insert_gone,
            INSERT_ROW.replace("%(t)s", "ARRAY['org-a']").replace("%(days)s", "1")
            + " ON CONFLICT (tenant_id, period_type, dimension, period_start, value) "
            "DO UPDATE SET tenant_id = 'org-gone'",
            "MERGE INTO revenue_segments AS r USING (VALUES ('org-a')) AS s(t) ON r.tenant_id = s.t "
            "WHEN MATCHED THEN UPDATE SET tenant_id = 'org-gone'",
        ]
        for statement in statements:
            with pytest.raises(psycopg.errors.ForeignKeyViolation, match="org-gone"):
                conn.execute(statement)
            conn.rollback()
        columns = INSERT_ROW[INSERT_ROW.index("(") + 1:INSERT_ROW.index(")")]
        with pytest.raises(psycopg.errors.ForeignKeyViolation, match="org-gone"):
            with conn.cursor().copy(f"COPY revenue_segments ({columns}) FROM STDIN") as copy:
                copy.write_row(["x", "org-gone", "2025-03-01", "2025-03-01", "day", "plan", "pro", *[0] * 15])
        conn.rollback()
    assert _tenants_with_rows(tenants) == {"org-a": 2}


def test_deleting_several_organizations_in_one_statement_deletes_the_rows_of_each(tenants):
    with _connect(tenants) as conn:
        conn.execute("INSERT INTO organizations (id, name) VALUES ('org-c', 'C')")
        conn.execute(INSERT_ROW, {"t": ["org-a", "org-b", "org-c"], "days": 2})
        conn.commit()
        conn.execute(
            "DELETE FROM organizations AS o USING (VALUES ('org-a'), ('org-c')) AS d(id) WHERE o.id = d.id"
        )
        conn.commit()
    assert _tenants_with_rows(tenants) == {"org-b": 2}


def test_truncating_organizations_without_cascade_is_still_refused(tenants):
    """The other tables' foreign keys to organizations still refuse it, as this one's did."""
    with _connect(tenants) as conn:
        conn.execute(INSERT_ROW, {"t": ["org-a"], "days": 2})
        conn.commit()
        with pytest.raises(psycopg.errors.FeatureNotSupported):
            conn.execute("TRUNCATE organizations")
        conn.rollback()
    assert _tenants_with_rows(tenants) == {"org-a": 2}


def test_a_deletion_by_a_role_under_row_level_security_deletes_all_the_organizations_rows(tenants):
    """The deletion's own rights and row-level security do not limit the rows deleted with the
    organization: the cascade runs as its owner, as a foreign key's does."""
    with _connect(tenants) as conn:
        conn.execute(INSERT_ROW, {"t": ["org-a", "org-b"], "days": 2})
        conn.execute("GRANT SELECT, DELETE ON organizations TO analytics_app")
        conn.commit()
        conn.execute("SET ROLE analytics_app")
        conn.execute("SELECT set_config('app.tenant_id', 'org-b', false)")  # sees org-b's rows only
        conn.execute("DELETE FROM organizations WHERE id = 'org-a'")
        conn.commit()
    assert _tenants_with_rows(tenants) == {"org-b": 2}


def test_a_writers_temporary_table_does_not_stand_in_for_organizations(tenants):
    """The check reads the schema's organizations whatever the writer's search_path: a temporary
    table of the same name, first on it, is not looked at (pg_temp comes last on the functions')."""
    with _connect(tenants) as conn:
        conn.execute("CREATE TEMP TABLE organizations (id text PRIMARY KEY, name text)")
        conn.execute("INSERT INTO pg_temp.organizations VALUES ('org-gone', 'Gone')")
        conn.execute("SET search_path = pg_temp, public")
        with pytest.raises(psycopg.errors.ForeignKeyViolation, match="org-gone"):
            conn.execute(INSERT_ROW, {"t": ["org-gone"], "days": 1})
        conn.rollback()
    assert _tenants_with_rows(tenants) == {}


def test_a_write_blocks_neither_another_write_nor_a_rename_of_its_organizations(tenants):
    """The organizations are locked FOR KEY SHARE, as by the foreign key's check: two writers
    naming them in either order do not wait for each other, nor does a change of an
    organization's name wait for a writer; only a deletion or a change of id does."""
    first = _connect(tenants)
    first.execute(INSERT_ROW, {"t": ["org-a", "org-b"], "days": 1})
    with _connect(tenants) as second:
        second.execute("SET lock_timeout = '2s'")
        april = INSERT_ROW.replace("DATE '2025-03-01'", "DATE '2025-04-01'")
        second.execute(april, {"t": ["org-b", "org-a"], "days": 1})
        second.execute("UPDATE organizations SET name = 'A renamed' WHERE id = 'org-a'")
        second.commit()
    first.commit()
    first.close()
    assert _tenants_with_rows(tenants) == {"org-a": 2, "org-b": 2}


def test_downgrade_restores_the_foreign_key_and_upgrade_replaces_it_again(db_url):
    from analytics_pipeline.core import migrate

    migrate.downgrade(db_url, "0026_revenue_segments_key")
    with _connect(db_url) as conn:
        conn.execute("INSERT INTO organizations (id, name) VALUES ('org-a', 'A')")
        conn.execute(INSERT_ROW, {"t": ["org-a"], "days": 2})
        (cascade,) = conn.execute(
            "SELECT confdeltype FROM pg_constraint WHERE conname = 'revenue_segments_tenant_id_fkey'"
        ).fetchone()
        triggers = conn.execute(
            "SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal AND tgrelid = 'revenue_segments'::regclass"
        ).fetchone()[0]
        conn.commit()
    assert (cascade, triggers) == ("c", 0)
    migrate.upgrade(db_url)
    with _connect(db_url) as conn:
        with pytest.raises(psycopg.errors.ForeignKeyViolation, match="org-gone"):
            conn.execute(INSERT_ROW, {"t": ["org-gone"], "days": 1})
        conn.rollback()
        conn.execute("DELETE FROM organizations WHERE id = 'org-a'")
        conn.commit()
    assert _tenants_with_rows(db_url) == {}


def test_the_checks_and_cascades_run_with_their_owners_rights_whoever_writes(tenants):
    """As a foreign key's checks and cascades do: a role without rights on organizations moves a
    row to another organization; a role that sees one tenant's rows (row-level security) cannot
    change the id of an organization other tenants' rows name; a role without rights on
    revenue_segments truncates organizations with CASCADE and empties it."""
    with _connect(tenants) as conn:
        conn.execute(INSERT_ROW, {"t": ["org-a"], "days": 2})
        conn.execute("GRANT SELECT, UPDATE ON organizations TO analytics_app")
        conn.execute("GRANT TRUNCATE ON ALL TABLES IN SCHEMA public TO analytics_app")
        conn.execute("REVOKE TRUNCATE ON revenue_segments FROM analytics_app")
        conn.commit()
        conn.execute("SET ROLE analytics_app")
        conn.execute("SELECT set_config('app.tenant_id', 'org-b', false)")  # sees none of org-a's rows
        with pytest.raises(psycopg.errors.ForeignKeyViolation, match="org-a"):
            conn.execute("UPDATE organizations SET id = 'org-z' WHERE id = 'org-a'")
        conn.rollback()
        conn.execute("RESET ROLE")
        conn.execute("REVOKE SELECT, UPDATE ON organizations FROM analytics_app")
        conn.execute("ALTER TABLE revenue_segments DISABLE ROW LEVEL SECURITY")
        conn.execute("SET ROLE analytics_app")
        conn.execute("UPDATE revenue_segments SET tenant_id = 'org-b' WHERE period_start = DATE '2025-03-02'")
        conn.commit()
        assert _tenants_with_rows(tenants) == {"org-a": 1, "org-b": 1}
        conn.execute("SET ROLE analytics_app")
        conn.execute("TRUNCATE organizations CASCADE")
        conn.commit()
    assert _tenants_with_rows(tenants) == {}
