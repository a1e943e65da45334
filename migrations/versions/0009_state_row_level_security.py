"""Row-level security on the derived state tables whose rows belong to one tenant.

Revisions 0005 and 0006 added subscription_events, tournament_history, user_signups,
user_activity_months and malformed_events without the protection that 0003 gives the
specification's tables (and 0007 gives report_deliveries). They get the same now: `analytics_app`
is granted the privileges it has on those tables, and the same policy admits only rows whose
tenant_id equals `current_setting('app.tenant_id', true)`. RLS is enabled but not forced, so the
pipeline's own role, which owns the tables and maintains these states, keeps full access.

state_watermarks has no tenant_id and holds no tenant's data: it stays without RLS and without a
grant to `analytics_app`.

Revision ID: 0009_state_row_level_security
Revises: 0008_retention
"""

from alembic import op

revision = "0009_state_row_level_security"
down_revision = "0008_retention"
branch_labels = None
depends_on = None

TABLES = (
    "subscription_events",
    "tournament_history",
    "user_signups",
    "user_activity_months",
    "malformed_events",
)
TENANT_MATCHES = "tenant_id = current_setting('app.tenant_id', true)"


def upgrade() -> None:
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
