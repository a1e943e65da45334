"""Report delivery channels, skipped deliveries, unsubscriptions, per-recipient delivery.

- `report_channels`: a report's destinations besides email (a signed JSON webhook, or a Slack
  incoming webhook). It belongs to one tenant, so it gets the row-level security of 0007/0009.
- `report_deliveries.channel`: `email` or a channel's id. The unique key becomes (report,
  scheduled_for, channel), so every channel of an occurrence is delivered once, on its own retries.
- `report_deliveries.delivered_to`: {recipient: Message-ID} of the email recipients that already
  have their copy; a retry sends only to the others.
- Statuses `skipped` (a report that skips empty periods had no data) and `unsubscribed` (a
  recipient left through the link in a report; trigger `unsubscribe`).

Revision ID: 0013_report_channels
Revises: 0009_state_row_level_security
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "0013_report_channels"
down_revision = "0012_payment_state"
branch_labels = None
depends_on = None

TENANT_MATCHES = "tenant_id = current_setting('app.tenant_id', true)"
OLD_STATUSES = ("sending", "retrying", "sent", "failed")
STATUSES = (*OLD_STATUSES, "skipped", "unsubscribed")
OLD_TRIGGERS = ("schedule", "manual")
TRIGGERS = (*OLD_TRIGGERS, "unsubscribe")
CHANNEL_KINDS = ("webhook", "slack")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _replace_check(name: str, condition: str) -> None:
    op.drop_constraint(name, "report_deliveries", type_="check")
    op.create_check_constraint(name, "report_deliveries", condition)


def upgrade() -> None:
    now = sa.text("timezone('utc', now())")
    op.create_table(
        "report_channels",
        sa.Column("id", sa.Text, nullable=False),
        sa.Column("report_id", sa.Text, nullable=False),
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("secret", sa.Text, nullable=True),
        sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("created_at", sa.DateTime, nullable=False, server_default=now),
        sa.PrimaryKeyConstraint("id", name="report_channels_pkey"),
        sa.ForeignKeyConstraint(
            ["report_id"], ["scheduled_reports.id"], ondelete="CASCADE", name="report_channels_report_id_fkey"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["organizations.id"], ondelete="CASCADE", name="report_channels_tenant_id_fkey"
        ),
        sa.CheckConstraint(_in("kind", CHANNEL_KINDS), name="report_channels_kind_check"),
    )
    op.create_index("report_channels_report_id_idx", "report_channels", ["report_id"])
    op.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON report_channels TO analytics_app")
    op.execute("ALTER TABLE report_channels ENABLE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY report_channels_tenant_isolation ON report_channels FOR ALL TO analytics_app "
        f"USING ({TENANT_MATCHES}) WITH CHECK ({TENANT_MATCHES})"
    )

    op.add_column("report_deliveries", sa.Column("channel", sa.Text, nullable=False, server_default="email"))
    op.add_column("report_deliveries", sa.Column("delivered_to", pg.JSONB, nullable=True))
    op.drop_constraint("report_deliveries_report_id_scheduled_for_key", "report_deliveries", type_="unique")
    op.create_unique_constraint(
        "report_deliveries_report_id_scheduled_for_channel_key",
        "report_deliveries",
        ["report_id", "scheduled_for", "channel"],
    )
    _replace_check("report_deliveries_status_check", _in("status", STATUSES))
    _replace_check("report_deliveries_trigger_check", _in("trigger", TRIGGERS))


def downgrade() -> None:
    op.execute(f"DELETE FROM report_deliveries WHERE NOT ({_in('status', OLD_STATUSES)}) OR channel <> 'email'")
    _replace_check("report_deliveries_trigger_check", _in("trigger", OLD_TRIGGERS))
    _replace_check("report_deliveries_status_check", _in("status", OLD_STATUSES))
    op.drop_constraint("report_deliveries_report_id_scheduled_for_channel_key", "report_deliveries", type_="unique")
    op.create_unique_constraint(
        "report_deliveries_report_id_scheduled_for_key", "report_deliveries", ["report_id", "scheduled_for"]
    )
    op.drop_column("report_deliveries", "delivered_to")
    op.drop_column("report_deliveries", "channel")
    op.drop_table("report_channels")  # its policy and grants go with it
