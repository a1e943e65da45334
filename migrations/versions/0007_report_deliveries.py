"""Report delivery log and CHECK constraints on scheduled_reports (placeholder).

Revision ID: 0007_report_deliveries
Revises: 0006_tournament_cohort_state
"""

revision = "0007_report_deliveries"
down_revision = "0006_tournament_cohort_state"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
