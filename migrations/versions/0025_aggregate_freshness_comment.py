"""The comment on `aggregate_freshness.aggregate` no longer lists the aggregates.

Revision 0019 named the three aggregates there were then; revenue_segments and
user_cohort_segments have rows in the table since. The comment now says what a value is, whichever
aggregates the code location declares, as analytics_pipeline/core/schema.py has it.

Revision ID: 0025_aggregate_freshness_comment
Revises: 0024_cohort_segments
"""

import sqlalchemy as sa
from alembic import op

revision = "0025_aggregate_freshness_comment"
down_revision = "0024_cohort_segments"
branch_labels = None
depends_on = None

# As revision 0019 put it.
OLD_COMMENT = "The aggregate's table: revenue_aggregates, tournament_aggregates or user_cohorts."
COMMENT = (
    "The aggregate's asset name, which is its table's: one of the aggregates the code location's domains "
    "declare (docs/api.md#freshness)."
)


def _comment(comment: str, existing: str) -> None:
    op.alter_column(
        "aggregate_freshness", "aggregate",
        comment=comment, existing_comment=existing, existing_type=sa.Text, existing_nullable=False,
    )


def upgrade() -> None:
    _comment(COMMENT, OLD_COMMENT)


def downgrade() -> None:
    _comment(OLD_COMMENT, COMMENT)
