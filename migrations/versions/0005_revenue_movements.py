"""Revenue movements: contraction and reactivation columns, so that the MRR bridge closes
(docs/metrics.md#mrr-movements).

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


def downgrade() -> None:
    for column in ("reactivation_revenue", "contraction_revenue"):
        op.drop_column("revenue_aggregates", column)
