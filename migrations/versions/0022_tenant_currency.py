"""The currency each tenant's amounts are in (#23).

Revision ID: 0022_tenant_currency
Revises: 0021_revenue_segments
"""

revision = "0022_tenant_currency"
down_revision = "0021_revenue_segments"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
