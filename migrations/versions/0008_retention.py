"""Retention bookkeeping (placeholder).

Revision ID: 0008_retention
Revises: 0007_report_deliveries
"""

revision = "0008_retention"
down_revision = "0007_report_deliveries"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
