"""Row-level security on the five tenant tables, for the application role `analytics_app`.

`analytics_app` (NOLOGIN) sees and writes only rows whose tenant_id equals
`current_setting('app.tenant_id', true)`; with no tenant set it sees nothing. The pipeline's own
role owns the tables, and RLS is enabled but not forced, so the owner keeps full access. The
connecting role is made a member of analytics_app so that `SET LOCAL ROLE analytics_app` works.
The role is cluster-wide and may serve other databases, so the downgrade keeps it.

Revision ID: 0003_row_level_security
Revises: 20251106_add_analytics_tables
"""

from alembic import op

revision = "0003_row_level_security"
down_revision = "20251106_add_analytics_tables"
branch_labels = None
depends_on = None

TABLES = (
    "analytics_events",
    "revenue_aggregates",
    "user_cohorts",
    "tournament_aggregates",
    "scheduled_reports",
)
TENANT_MATCHES = "tenant_id = current_setting('app.tenant_id', true)"


def upgrade() -> None:
    # Concurrent migrations of two databases on one server may race to create the role.
    op.execute(
        """
        DO $$
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'analytics_app') THEN
                CREATE ROLE analytics_app NOLOGIN;
            END IF;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END $$;
        """
    )
    op.execute(
        """
        DO $$
        BEGIN
            IF NOT pg_has_role(current_user, 'analytics_app', 'MEMBER') THEN
                EXECUTE format('GRANT analytics_app TO %I', current_user);
            END IF;
        END $$;
        """
    )
    op.execute("GRANT USAGE ON SCHEMA public TO analytics_app")
    for table in TABLES:
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO analytics_app")
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY {table}_tenant_isolation ON {table} FOR ALL TO analytics_app "
            f"USING ({TENANT_MATCHES}) WITH CHECK ({TENANT_MATCHES})"
        )


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP POLICY IF EXISTS {table}_tenant_isolation ON {table}")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
        op.execute(f"REVOKE ALL ON {table} FROM analytics_app")
