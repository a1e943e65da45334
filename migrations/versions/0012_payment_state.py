"""The payment history: payment_events, one row per valid payment_completed, payment_failed and
payment_refunded event, from which revenue_aggregates computes payments, attempts and refunds, so
that every revenue partition can be recomputed after raw events are purged. Row-level security
and grants as revision 0009 gives the other derived state tables.

Revision ID: 0012_payment_state
Revises: 0009_state_row_level_security
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_payment_state"
down_revision = "0011_event_contract_limits"
branch_labels = None
depends_on = None

TENANT_MATCHES = "tenant_id = current_setting('app.tenant_id', true)"


def upgrade() -> None:
    op.create_table(
        "payment_events",
        sa.Column("event_id", sa.Text, primary_key=True),
        sa.Column(
            "tenant_id",
            sa.Text,
            sa.ForeignKey("organizations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("occurred_at", sa.DateTime, nullable=False),
        sa.Column("amount", sa.Numeric(18, 2), nullable=False),
    )
    op.create_index("payment_events_occurred_at_idx", "payment_events", ["occurred_at"])
    op.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON payment_events TO analytics_app")
    op.execute("ALTER TABLE payment_events ENABLE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY payment_events_tenant_isolation ON payment_events FOR ALL TO analytics_app "
        f"USING ({TENANT_MATCHES}) WITH CHECK ({TENANT_MATCHES})"
    )


def downgrade() -> None:
    op.drop_table("payment_events")
