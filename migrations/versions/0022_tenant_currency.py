"""organization_settings: the currency each organization's amounts are in; report_changes: what
`reports edit` changed.

The platform writes one row per organization that bills in something other than the default
(docs/reports.md#currency); an organization without a row is in `USD`. Like `organizations`,
the table belongs to the platform's side: the pipeline reads it with its own role (reports name
the currency beside every amount), and `analytics_app`, the tenant-scoped role, has no grant on
it, so no tenant can read another's settings.

`currency` is an ISO 4217 alphabetic code: three capital letters, checked by the database.

`report_changes` records each `analytics-pipeline reports edit` of a scheduled report: when, who
(the operating-system user of the command) and each changed field's old and new value. It is the
operators' log, written and read with the pipeline's own role like `scheduled_reports`' CLI, and
goes with its report (ON DELETE CASCADE).

Revision ID: 0022_tenant_currency
Revises: 0021_revenue_segments
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "0022_tenant_currency"
down_revision = "0021_revenue_segments"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "organization_settings",
        sa.Column("organization_id", sa.Text, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False, server_default=sa.text("timezone('utc', now())")),
        sa.PrimaryKeyConstraint("organization_id", name="organization_settings_pkey"),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"], ondelete="CASCADE",
                                name="organization_settings_organization_id_fkey"),
        sa.CheckConstraint("currency ~ '^[A-Z]{3}$'", name="organization_settings_currency_check"),
    )

    op.create_table(
        "report_changes",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), nullable=False),
        sa.Column("report_id", sa.Text, nullable=False),
        sa.Column("changed_at", sa.DateTime, nullable=False, server_default=sa.text("timezone('utc', now())")),
        sa.Column("changed_by", sa.Text, nullable=False),
        sa.Column("changes", pg.JSONB, nullable=False),
        sa.PrimaryKeyConstraint("id", name="report_changes_pkey"),
        sa.ForeignKeyConstraint(["report_id"], ["scheduled_reports.id"], ondelete="CASCADE",
                                name="report_changes_report_id_fkey"),
    )
    op.create_index("report_changes_report_id_idx", "report_changes", ["report_id", "changed_at"])


def downgrade() -> None:
    op.drop_table("report_changes")
    op.drop_table("organization_settings")
