"""user_cohort_segments: the retention triangle by plan of the first subscription and by source.

One row per tenant, cohort month, month number, dimension (first_plan or source) and value, with
the columns of user_cohorts (docs/metrics.md#user_cohort_segments), the retention rate a fraction
(1 = 100 %), money in NUMERIC(18,2) as revision 0010 made it for user_cohorts; its unique key and
an index for the runs' deletes. The runs fill it from the cohort and segment state.

Row-level security and grants as revision 0009 gives the other tables whose rows belong to a
tenant; column comments as revision 0016 puts them (analytics_pipeline/core/schema.py).

Revision ID: 0024_cohort_segments
Revises: 0023_organization_settings_read
"""

import sqlalchemy as sa
from alembic import op

revision = "0024_cohort_segments"
down_revision = "0023_organization_settings_read"
branch_labels = None
depends_on = None

TABLE = "user_cohort_segments"
TENANT_MATCHES = "tenant_id = current_setting('app.tenant_id', true)"
MONEY = sa.Numeric(18, 2)
_NOW = sa.text("timezone('utc', now())")

# As analytics_pipeline/core/schema.py has them at this revision.
COMMENTS = {
    "id": "Row key: tenant_id:cohort_month:month_number:dimension:value (docs/metrics.md#user_cohort_segments)",
    "tenant_id": "The organization the row belongs to; row-level security filters on it (docs/metrics.md#user_cohort_segments)",
    "cohort_month": "First day of the calendar month of the cohort's users' first user_signup (docs/metrics.md#cohort-metrics)",
    "month_number": "Months after the cohort month: the row describes cohort_month + month_number (docs/metrics.md#cohort-metrics)",
    "dimension": "first_plan or source (docs/metrics.md#cohort-segments)",
    "value": "The plan of the user's first subscription, or the source of their first user_signup; (none) where there is none (docs/metrics.md#cohort-segments)",
    "cohort_size": "Users of the cohort in the value (docs/metrics.md#cohort-metrics)",
    "retained_users": "Those users with activity in the month; all of them in month 0 (docs/metrics.md#cohort-metrics)",
    "retention_rate": "retained_users / cohort_size, a fraction (1 = 100 %) rounded to 4 decimals (docs/metrics.md#cohort-segments)",
    "revenue": "Those users' payment_completed amounts in the month (docs/metrics.md#cohort-metrics)",
    "ltv": "Cumulative revenue of months 0..month_number per user of the cohort in the value (docs/metrics.md#cohort-metrics)",
    "updated_at": "When the pipeline last wrote the row, UTC (docs/metrics.md#user_cohort_segments)",
}


def upgrade() -> None:
    columns = [
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("tenant_id", sa.Text, sa.ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
        sa.Column("cohort_month", sa.Date, nullable=False),
        sa.Column("month_number", sa.Integer, nullable=False),
        sa.Column("dimension", sa.String(20), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("cohort_size", sa.Integer, nullable=False),
        sa.Column("retained_users", sa.Integer, nullable=False),
        sa.Column("retention_rate", sa.Numeric(5, 4), nullable=False),
        sa.Column("revenue", MONEY, nullable=False),
        sa.Column("ltv", MONEY, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False, server_default=_NOW),
    ]
    for column in columns:
        column.comment = COMMENTS[column.name]
    op.create_table(
        TABLE,
        *columns,
        sa.UniqueConstraint(
            "tenant_id", "dimension", "value", "cohort_month", "month_number",
            name="user_cohort_segments_tenant_dimension_value_cohort_key",
        ),
    )
    op.create_index("user_cohort_segments_tenant_cohort_month_idx", TABLE, ["tenant_id", sa.text("cohort_month DESC")])
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {TABLE} TO analytics_app")
    op.execute(f"ALTER TABLE {TABLE} ENABLE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY {TABLE}_tenant_isolation ON {TABLE} FOR ALL TO analytics_app "
        f"USING ({TENANT_MATCHES}) WITH CHECK ({TENANT_MATCHES})"
    )


def downgrade() -> None:
    op.drop_table(TABLE)
