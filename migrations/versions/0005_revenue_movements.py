"""Revenue movements: contraction and reactivation columns, so that the MRR bridge closes
(docs/metrics.md#mrr-movements); the subscription history MRR is computed from; state
watermarks (analytics_pipeline/aggregation/state.py).

Revision ID: 0005_revenue_movements
Revises: 0004_event_contract
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_revenue_movements"
down_revision = "0004_event_contract"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for column in ("contraction_revenue", "reactivation_revenue"):
        op.add_column(
            "revenue_aggregates",
            sa.Column(column, sa.Numeric(10, 2), nullable=False, server_default="0"),
        )
    op.create_table(
        "subscription_events",
        sa.Column("event_id", sa.Text, primary_key=True),
        sa.Column(
            "tenant_id",
            sa.Text,
            sa.ForeignKey("organizations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("subscription_id", sa.Text, nullable=False),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("occurred_at", sa.DateTime, nullable=False),
        sa.Column("monthly_value", sa.Numeric(12, 2), nullable=True),
    )
    op.create_index(
        "subscription_events_subscription_idx",
        "subscription_events",
        ["tenant_id", "user_id", "subscription_id", "occurred_at"],
    )
    op.create_table(
        "state_watermarks",
        sa.Column("state_name", sa.Text, primary_key=True),
        sa.Column("absorbed_through", sa.DateTime, nullable=True),
        sa.Column("updated_at", sa.DateTime, nullable=False, server_default=sa.text("timezone('utc', now())")),
    )


def downgrade() -> None:
    op.drop_table("state_watermarks")
    op.drop_table("subscription_events")
    for column in ("reactivation_revenue", "contraction_revenue"):
        op.drop_column("revenue_aggregates", column)
