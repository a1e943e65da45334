"""organization_settings readable by `analytics_app`, each tenant its own row only.

The Dashboard API answers in the tenant's currency (docs/api.md#currency), and it reads as
`analytics_app` under row-level security. That role is granted SELECT on organization_settings
(never INSERT, UPDATE or DELETE: the platform writes the table), and a policy admits only the row
whose organization_id equals `current_setting('app.tenant_id', true)`, the tenant the API's
transaction is scoped to, as the tenant tables' policies do (revisions 0003 and 0009). Without a
tenant set, no row is visible. RLS is enabled but not forced, so the pipeline's own role, which
owns the table and reads every organization's currency for the reports, keeps full access.

Revision ID: 0023_organization_settings_read
Revises: 0022_tenant_currency
"""

from alembic import op

revision = "0023_organization_settings_read"
down_revision = "0022_tenant_currency"
branch_labels = None
depends_on = None

ORGANIZATION_MATCHES = "organization_id = current_setting('app.tenant_id', true)"


def upgrade() -> None:
    op.execute("GRANT SELECT ON organization_settings TO analytics_app")
    op.execute("ALTER TABLE organization_settings ENABLE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY organization_settings_tenant_isolation ON organization_settings FOR SELECT "
        f"TO analytics_app USING ({ORGANIZATION_MATCHES})"
    )


def downgrade() -> None:
    op.execute("DROP POLICY IF EXISTS organization_settings_tenant_isolation ON organization_settings")
    op.execute("ALTER TABLE organization_settings DISABLE ROW LEVEL SECURITY")
    op.execute("REVOKE ALL ON organization_settings FROM analytics_app")
