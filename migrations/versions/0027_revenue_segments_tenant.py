"""revenue_segments: its tenant checked by triggers, an insert's once per statement, instead of a
foreign key's check per row.

The foreign key from `revenue_segments.tenant_id` to `organizations` ran one check per written
row: a lookup of the organization that locks it FOR KEY SHARE. A backfill writes a million rows
for some fifty tenants, and the checks took about 4 s of its day rows' insert
(bench/segments_bench.py). This revision replaces that foreign key with triggers that keep what it
guaranteed:

- `revenue_segments_tenant_exists` (after INSERT, for each statement): locks the organizations the
  statement's rows name FOR KEY SHARE, as the foreign key's check does row by row, so that none of
  them can be deleted (or its id changed) before the writing transaction ends; then refuses the
  statement, with the foreign key's SQLSTATE 23503, if a row names an organization that does not
  exist.
- `revenue_segments_tenant_moved` (after UPDATE, for each row whose tenant_id changed, as the
  foreign key checked only a changed key): the same for the row's new organization. An update that
  keeps its rows' tenant, as the pipeline's (upsert_rows.sql) always does, locks and checks nothing:
  a statement-level check of every updated row's organization locked it only at the end of the
  statement, after the rows; a deletion of that organization meanwhile, whose cascade waits for
  those rows, then deadlocked with it, which the foreign key never did.
- `organizations_delete_revenue_segments` (after DELETE on organizations, for each statement):
  deletes the deleted organizations' rows, as ON DELETE CASCADE did. An organization a writing
  transaction has locked is deleted once that transaction has ended; in READ COMMITTED (the
  default) the trigger's DELETE then sees the rows it committed.
- `organizations_update_revenue_segments` (after UPDATE on organizations, for each statement):
  refuses a change of an organization's id while rows name the old one (NO ACTION).
- `organizations_truncate_revenue_segments` (after TRUNCATE on organizations): empties
  revenue_segments, as TRUNCATE ... CASCADE did.

The functions run as their owner (SECURITY DEFINER, as the foreign key's own checks and cascades
run as the tables' owner): row-level security and the writer's privileges on organizations do not
change what they see. Their search_path is this schema's, then pg_temp.

What the foreign key did that the triggers do not: `TRUNCATE organizations, <every other table
referencing it>` without CASCADE and without revenue_segments was refused; it now empties
revenue_segments too (plain `TRUNCATE organizations` is still refused by the other tables' foreign
keys). And a transaction in REPEATABLE READ or SERIALIZABLE that deletes an organization while a
run writes its rows may leave that run's rows behind (PostgreSQL's own cascade then fails with a
serialization error instead). The next run covering those periods deletes them, as it deletes
every stored row it does not compute (sql/segments/delete_stale.sql); docs/operations.md says so.

Revision ID: 0027_revenue_segments_tenant
Revises: 0026_revenue_segments_key
"""

import sqlalchemy as sa
from alembic import op

revision = "0027_revenue_segments_tenant"
down_revision = "0026_revenue_segments_key"
branch_labels = None
depends_on = None

FOREIGN_KEY = "revenue_segments_tenant_id_fkey"

FUNCTIONS = """
CREATE FUNCTION revenue_segments_tenant_exists() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = {search_path} AS $$
DECLARE
    tenants text[];
    missing text;
BEGIN
    SELECT array_agg(t.tenant_id) INTO tenants FROM (SELECT DISTINCT w.tenant_id FROM written AS w) AS t;
    PERFORM FROM organizations AS o WHERE o.id = ANY (tenants) ORDER BY o.id FOR KEY SHARE OF o;
    SELECT t.id INTO missing
    FROM unnest(tenants) AS t(id)
    WHERE NOT EXISTS (SELECT FROM organizations AS o WHERE o.id = t.id)
    ORDER BY t.id
    LIMIT 1;
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'insert or update on table "revenue_segments" names organization % that does not exist',
            quote_literal(missing)
            USING ERRCODE = 'foreign_key_violation', TABLE = 'revenue_segments', COLUMN = 'tenant_id';
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION revenue_segments_tenant_moved() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = {search_path} AS $$
BEGIN
    PERFORM FROM organizations AS o WHERE o.id = NEW.tenant_id FOR KEY SHARE OF o;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'insert or update on table "revenue_segments" names organization % that does not exist',
            quote_literal(NEW.tenant_id)
            USING ERRCODE = 'foreign_key_violation', TABLE = 'revenue_segments', COLUMN = 'tenant_id';
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION organizations_delete_revenue_segments() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = {search_path} AS $$
BEGIN
    DELETE FROM revenue_segments AS r USING deleted AS d WHERE r.tenant_id = d.id;
    RETURN NULL;
END
$$;

CREATE FUNCTION organizations_update_revenue_segments() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = {search_path} AS $$
DECLARE
    named text;
BEGIN
    SELECT b.id INTO named
    FROM before AS b
    WHERE NOT EXISTS (SELECT FROM organizations AS o WHERE o.id = b.id)
      AND EXISTS (SELECT FROM revenue_segments AS r WHERE r.tenant_id = b.id)
    LIMIT 1;
    IF named IS NOT NULL THEN
        RAISE EXCEPTION 'update on table "organizations" changes id % that revenue_segments rows still name',
            quote_literal(named)
            USING ERRCODE = 'foreign_key_violation', TABLE = 'organizations', COLUMN = 'id';
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION organizations_truncate_revenue_segments() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = {search_path} AS $$
BEGIN
    TRUNCATE revenue_segments;
    RETURN NULL;
END
$$;

CREATE TRIGGER revenue_segments_tenant_exists_on_insert AFTER INSERT ON revenue_segments
REFERENCING NEW TABLE AS written FOR EACH STATEMENT EXECUTE FUNCTION revenue_segments_tenant_exists();
CREATE TRIGGER revenue_segments_tenant_moved_on_update AFTER UPDATE ON revenue_segments
FOR EACH ROW WHEN (OLD.tenant_id IS DISTINCT FROM NEW.tenant_id) EXECUTE FUNCTION revenue_segments_tenant_moved();
CREATE TRIGGER organizations_delete_revenue_segments AFTER DELETE ON organizations
REFERENCING OLD TABLE AS deleted FOR EACH STATEMENT EXECUTE FUNCTION organizations_delete_revenue_segments();
CREATE TRIGGER organizations_update_revenue_segments AFTER UPDATE ON organizations
REFERENCING OLD TABLE AS before FOR EACH STATEMENT EXECUTE FUNCTION organizations_update_revenue_segments();
CREATE TRIGGER organizations_truncate_revenue_segments AFTER TRUNCATE ON organizations
FOR EACH STATEMENT EXECUTE FUNCTION organizations_truncate_revenue_segments();
"""

TRIGGERS = (
    ("revenue_segments_tenant_exists_on_insert", "revenue_segments"),
    ("revenue_segments_tenant_moved_on_update", "revenue_segments"),
    ("organizations_delete_revenue_segments", "organizations"),
    ("organizations_update_revenue_segments", "organizations"),
    ("organizations_truncate_revenue_segments", "organizations"),
)
FUNCTION_NAMES = (
    "revenue_segments_tenant_exists",
    "revenue_segments_tenant_moved",
    "organizations_delete_revenue_segments",
    "organizations_update_revenue_segments",
    "organizations_truncate_revenue_segments",
)


def upgrade() -> None:
    schema = op.get_bind().execute(sa.text("SELECT current_schema()")).scalar_one()
    search_path = '"' + schema.replace('"', '""') + '", pg_temp'
    op.execute(f"ALTER TABLE revenue_segments DROP CONSTRAINT {FOREIGN_KEY}")
    op.execute(FUNCTIONS.format(search_path=search_path))


def downgrade() -> None:
    for trigger, table in TRIGGERS:
        op.execute(f"DROP TRIGGER {trigger} ON {table}")
    for function in FUNCTION_NAMES:
        op.execute(f"DROP FUNCTION {function}()")
    op.execute(
        f"ALTER TABLE revenue_segments ADD CONSTRAINT {FOREIGN_KEY} "
        "FOREIGN KEY (tenant_id) REFERENCES organizations (id) ON DELETE CASCADE"
    )
