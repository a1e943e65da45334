"""When each aggregate was last materialized: `aggregate_freshness`.

Every run of an aggregate (aggregation/runs.py, run_aggregate) writes its row inside the run's
transaction, so the time commits with the rows; the Dashboard API reads it as `analytics_app` and
returns it with the aggregate's data (docs/api.md#freshness). The table has no tenant_id and holds
no tenant's data, so it has no row-level security: `analytics_app` gets SELECT on it only.

Upgrade of a database that already holds aggregates: each one's row starts from the latest
`updated_at` of its rows (the start of the last run that wrote a row), so the API has a time to
show before the next run; a table without rows gets none.

Revision ID: 0019_aggregate_freshness
Revises: 0018_commit_order_ingestion
"""

import sqlalchemy as sa
from alembic import op

revision = "0019_aggregate_freshness"
down_revision = "0018_commit_order_ingestion"
branch_labels = None
depends_on = None

AGGREGATES = ("revenue_aggregates", "tournament_aggregates", "user_cohorts")


def upgrade() -> None:
    op.create_table(
        "aggregate_freshness",
        sa.Column(
            "aggregate",
            sa.Text,
            nullable=False,
            comment="The aggregate's table: revenue_aggregates, tournament_aggregates or user_cohorts.",
        ),
        sa.Column(
            "materialized_at",
            sa.DateTime,
            nullable=False,
            comment=(
                "When its last committed run began computing, UTC: its rows hold every event committed "
                "before (docs/api.md#freshness)."
            ),
        ),
        sa.PrimaryKeyConstraint("aggregate", name="aggregate_freshness_pkey"),
    )
    op.execute("GRANT SELECT ON aggregate_freshness TO analytics_app")
    for aggregate in AGGREGATES:
        op.execute(
            f"INSERT INTO aggregate_freshness (aggregate, materialized_at) "
            f"SELECT '{aggregate}', max(updated_at) FROM {aggregate} HAVING max(updated_at) IS NOT NULL"
        )


def downgrade() -> None:
    op.drop_table("aggregate_freshness")
