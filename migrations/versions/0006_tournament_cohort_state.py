"""Derived state of tournament_aggregates and user_cohorts, kept after raw events are purged:
tournament_history, user_signups, user_activity_months, and malformed_events (the malformed
events they met).
Meanings: docs/metrics.md#tournament-state and docs/metrics.md#cohort-state.

Revision ID: 0006_tournament_cohort_state
Revises: 0005_revenue_movements
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "0006_tournament_cohort_state"
down_revision = "0005_revenue_movements"
branch_labels = None
depends_on = None

NOW = sa.text("now()")


def _tenant() -> sa.Column:
    return sa.Column(
        "tenant_id", sa.Text, sa.ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "tournament_history",
        _tenant(),
        sa.Column("tournament_id", sa.Text, nullable=False),
        sa.Column("tournament_day", sa.Date, nullable=True),
        sa.Column("previous_tournament_day", sa.Date, nullable=True),
        sa.Column("created_event_at", sa.DateTime, nullable=True),
        sa.Column("first_activity_at", sa.DateTime, nullable=True),
        sa.Column("format", sa.Text, nullable=True),
        sa.Column("started_at", sa.DateTime, nullable=True),
        sa.Column("completed_at", sa.DateTime, nullable=True),
        sa.Column("completion_duration_minutes", sa.Numeric, nullable=True),
        sa.Column("player_ids", pg.ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column("payment_amounts", pg.JSONB, nullable=False, server_default="{}"),
        sa.Column("player_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("revenue", sa.Numeric, nullable=False, server_default="0"),
        sa.Column("updated_at", sa.DateTime, nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("tenant_id", "tournament_id", name="tournament_history_pkey"),
    )
    op.create_index("tournament_history_tournament_day_idx", "tournament_history", ["tournament_day"])
    op.create_table(
        "user_signups",
        _tenant(),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("signed_up_at", sa.DateTime, nullable=False),
        sa.Column("cohort_month", sa.Date, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("tenant_id", "user_id", name="user_signups_pkey"),
    )
    op.create_index(
        "user_signups_tenant_id_cohort_month_idx", "user_signups", ["tenant_id", "cohort_month"]
    )
    op.create_table(
        "user_activity_months",
        _tenant(),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("activity_month", sa.Date, nullable=False),
        sa.Column("payment_amounts", pg.JSONB, nullable=False, server_default="{}"),
        sa.Column("revenue", sa.Numeric, nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint(
            "tenant_id", "user_id", "activity_month", name="user_activity_months_pkey"
        ),
    )
    op.create_index(
        "user_activity_months_activity_month_idx", "user_activity_months", ["activity_month"]
    )
    op.create_table(
        "malformed_events",
        sa.Column("event_id", sa.Text, primary_key=True),
        _tenant(),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("event_data", pg.JSONB, nullable=False),
        sa.Column("user_id", sa.Text, nullable=True),
        sa.Column("timestamp", sa.DateTime, nullable=False),
        sa.Column("problem", sa.Text, nullable=False),
    )
    op.create_index("malformed_events_timestamp_idx", "malformed_events", ["timestamp"])


def downgrade() -> None:
    for table in (
        "malformed_events",
        "user_activity_months",
        "user_signups",
        "tournament_history",
    ):
        op.drop_table(table)
    op.execute(
        "DELETE FROM state_watermarks WHERE state_name IN "
        "('tournament_history', 'user_signups', 'user_activity_months')"
    )
