"""The event contract: an index on analytics_events.created_at (docs/events.md says why).

Revision ID: 0004_event_contract
Revises: 0003_row_level_security
"""

from alembic import op

revision = "0004_event_contract"
down_revision = "0003_row_level_security"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("analytics_events_created_at_idx", "analytics_events", ["created_at"])


def downgrade() -> None:
    op.drop_index("analytics_events_created_at_idx", table_name="analytics_events")
