"""The specification's five analytics tables (shared/seed/20251106_add_analytics_tables.md).

Constraint names follow the specification's rollback (`<table>_tenant_id_fkey`, ...).

Revision ID: 20251106_add_analytics_tables
Revises: 0001_platform_tables
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "20251106_add_analytics_tables"
down_revision = "0001_platform_tables"
branch_labels = None
depends_on = None

NOW = sa.text("timezone('utc', now())")


def _tenant(table: str) -> list:
    return [
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["organizations.id"], ondelete="CASCADE", name=f"{table}_tenant_id_fkey"
        ),
    ]


def _period_columns() -> list:
    return [
        sa.Column("period_start", sa.Date, nullable=False),
        sa.Column("period_end", sa.Date, nullable=False),
        sa.Column("period_type", sa.String(20), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "analytics_events",
        sa.Column("id", sa.Text, nullable=False),
        *_tenant("analytics_events"),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("event_data", pg.JSONB, nullable=False),
        sa.Column("user_id", sa.Text, nullable=True),
        sa.Column("session_id", sa.String(255), nullable=True),
        sa.Column("timestamp", sa.DateTime, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("id", name="analytics_events_pkey"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], ondelete="SET NULL", name="analytics_events_user_id_fkey"
        ),
    )
    op.create_index(
        "analytics_events_tenant_id_event_type_idx", "analytics_events", ["tenant_id", "event_type"]
    )
    op.create_index(
        "analytics_events_tenant_id_timestamp_idx",
        "analytics_events",
        ["tenant_id", sa.text('"timestamp" DESC')],
    )
    op.create_index(
        "analytics_events_user_id_timestamp_idx",
        "analytics_events",
        ["user_id", sa.text('"timestamp" DESC')],
    )

    op.create_table(
        "revenue_aggregates",
        sa.Column("id", sa.Text, nullable=False),
        *_tenant("revenue_aggregates"),
        *_period_columns(),
        sa.Column("mrr", sa.Numeric(10, 2), nullable=False),
        sa.Column("arr", sa.Numeric(10, 2), nullable=False),
        sa.Column("new_revenue", sa.Numeric(10, 2), nullable=False),
        sa.Column("churned_revenue", sa.Numeric(10, 2), nullable=False),
        sa.Column("expansion_revenue", sa.Numeric(10, 2), nullable=False),
        sa.Column("total_revenue", sa.Numeric(10, 2), nullable=False),
        sa.Column("payment_count", sa.Integer, nullable=False),
        sa.Column("payment_success_count", sa.Integer, nullable=False),
        sa.Column("refund_count", sa.Integer, nullable=False),
        sa.Column("refund_amount", sa.Numeric(10, 2), nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("id", name="revenue_aggregates_pkey"),
        sa.UniqueConstraint(
            "tenant_id",
            "period_type",
            "period_start",
            name="revenue_aggregates_tenant_id_period_type_period_start_key",
        ),
    )
    op.create_index(
        "revenue_aggregates_tenant_id_period_start_idx",
        "revenue_aggregates",
        ["tenant_id", sa.text("period_start DESC")],
    )

    op.create_table(
        "user_cohorts",
        sa.Column("id", sa.Text, nullable=False),
        *_tenant("user_cohorts"),
        sa.Column("cohort_month", sa.Date, nullable=False),
        sa.Column("cohort_size", sa.Integer, nullable=False),
        sa.Column("month_number", sa.Integer, nullable=False),
        sa.Column("retained_users", sa.Integer, nullable=False),
        sa.Column("retention_rate", sa.Numeric(5, 2), nullable=False),
        sa.Column("revenue", sa.Numeric(10, 2), nullable=False),
        sa.Column("ltv", sa.Numeric(10, 2), nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("id", name="user_cohorts_pkey"),
        sa.UniqueConstraint(
            "tenant_id",
            "cohort_month",
            "month_number",
            name="user_cohorts_tenant_id_cohort_month_month_number_key",
        ),
    )
    op.create_index(
        "user_cohorts_tenant_id_cohort_month_idx",
        "user_cohorts",
        ["tenant_id", sa.text("cohort_month DESC")],
    )

    op.create_table(
        "tournament_aggregates",
        sa.Column("id", sa.Text, nullable=False),
        *_tenant("tournament_aggregates"),
        *_period_columns(),
        sa.Column("tournament_count", sa.Integer, nullable=False),
        sa.Column("completed_count", sa.Integer, nullable=False),
        sa.Column("completion_rate", sa.Numeric(5, 2), nullable=False),
        sa.Column("total_players", sa.Integer, nullable=False),
        sa.Column("avg_players", sa.Numeric(10, 2), nullable=False),
        sa.Column("avg_duration_minutes", sa.Numeric(10, 2), nullable=True),
        sa.Column("most_popular_format", sa.String(100), nullable=True),
        sa.Column("revenue", sa.Numeric(10, 2), nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("id", name="tournament_aggregates_pkey"),
        sa.UniqueConstraint(
            "tenant_id",
            "period_type",
            "period_start",
            name="tournament_aggregates_tenant_id_period_type_period_start_key",
        ),
    )
    op.create_index(
        "tournament_aggregates_tenant_id_period_start_idx",
        "tournament_aggregates",
        ["tenant_id", sa.text("period_start DESC")],
    )

    op.create_table(
        "scheduled_reports",
        sa.Column("id", sa.Text, nullable=False),
        *_tenant("scheduled_reports"),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("report_type", sa.String(50), nullable=False),
        sa.Column("frequency", sa.String(20), nullable=False),
        sa.Column("recipients", pg.ARRAY(sa.Text), nullable=False),
        sa.Column("parameters", pg.JSONB, nullable=True),
        sa.Column("last_run_at", sa.DateTime, nullable=True),
        sa.Column("next_run_at", sa.DateTime, nullable=False),
        sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("created_at", sa.DateTime, nullable=False, server_default=NOW),
        sa.Column("updated_at", sa.DateTime, nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("id", name="scheduled_reports_pkey"),
    )
    op.create_index("scheduled_reports_tenant_id_idx", "scheduled_reports", ["tenant_id"])
    op.create_index("scheduled_reports_next_run_at_idx", "scheduled_reports", ["next_run_at"])


def downgrade() -> None:
    # The specification's rollback: foreign keys first, then the tables.
    op.execute('ALTER TABLE "analytics_events" DROP CONSTRAINT "analytics_events_tenant_id_fkey"')
    op.execute('ALTER TABLE "analytics_events" DROP CONSTRAINT "analytics_events_user_id_fkey"')
    op.execute('ALTER TABLE "revenue_aggregates" DROP CONSTRAINT "revenue_aggregates_tenant_id_fkey"')
    op.execute('ALTER TABLE "user_cohorts" DROP CONSTRAINT "user_cohorts_tenant_id_fkey"')
    op.execute(
        'ALTER TABLE "tournament_aggregates" DROP CONSTRAINT "tournament_aggregates_tenant_id_fkey"'
    )
    op.execute('ALTER TABLE "scheduled_reports" DROP CONSTRAINT "scheduled_reports_tenant_id_fkey"')
    for table in (
        "analytics_events",
        "revenue_aggregates",
        "user_cohorts",
        "tournament_aggregates",
        "scheduled_reports",
    ):
        op.execute(f'DROP TABLE IF EXISTS "{table}" CASCADE')
