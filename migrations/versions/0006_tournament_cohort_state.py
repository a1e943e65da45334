"""Derived state for tournament_aggregates and user_cohorts (placeholder, filled by that work).

Revision ID: 0006_tournament_cohort_state
Revises: 0005_revenue_movements
"""

revision = "0006_tournament_cohort_state"
down_revision = "0005_revenue_movements"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
