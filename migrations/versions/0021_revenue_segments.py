"""revenue_segments: MRR, movements and customers by plan, billing interval and source (#22).

Revision ID: 0021_revenue_segments
Revises: 0020_kpi_change
"""

revision = "0021_revenue_segments"
down_revision = "0020_kpi_change"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
