"""Report delivery log and CHECK constraints on scheduled_reports.

`report_deliveries` records every delivery of a scheduled report, one row per report and scheduled
time; the unique key is what makes a delivery happen once (analytics_pipeline/reports/delivery.py).
It belongs to one tenant, so it gets the same row-level security as the specification's tables.

The CHECK constraints admit the specification's report types and frequencies. Rows that already
hold another value stop the upgrade with a message naming them: the constraint is not added
NOT VALID, because every later update of such a row (advancing its schedule) would then fail.

Revision ID: 0007_report_deliveries
Revises: 0006_tournament_cohort_state
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "0007_report_deliveries"
down_revision = "0006_tournament_cohort_state"
branch_labels = None
depends_on = None

REPORT_TYPES = ("revenue_summary", "user_analytics", "tournament_performance", "comprehensive")
FREQUENCIES = ("daily", "weekly", "monthly")
TENANT_MATCHES = "tenant_id = current_setting('app.tenant_id', true)"


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _refuse_rows_that_would_violate(column: str, values: tuple[str, ...]) -> None:
    bad = op.get_bind().execute(
        sa.text(f"SELECT id, {column} FROM scheduled_reports WHERE NOT ({_in(column, values)}) LIMIT 20")
    ).all()
    if bad:
        listed = ", ".join(f"{id_!r} ({value!r})" for id_, value in bad)
        raise RuntimeError(
            f"scheduled_reports.{column} must be one of {', '.join(values)}; these reports hold "
            f"another value: {listed}. Correct or delete them, then run the upgrade again."
        )


def upgrade() -> None:
    _refuse_rows_that_would_violate("report_type", REPORT_TYPES)
    _refuse_rows_that_would_violate("frequency", FREQUENCIES)
    op.create_check_constraint(
        "scheduled_reports_report_type_check", "scheduled_reports", _in("report_type", REPORT_TYPES)
    )
    op.create_check_constraint(
        "scheduled_reports_frequency_check", "scheduled_reports", _in("frequency", FREQUENCIES)
    )

    now = sa.text("now()")
    op.create_table(
        "report_deliveries",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), nullable=False),
        sa.Column("report_id", sa.Text, nullable=False),
        sa.Column("tenant_id", sa.Text, nullable=False),
        sa.Column("scheduled_for", sa.DateTime, nullable=False),
        sa.Column("trigger", sa.String(20), nullable=False, server_default="schedule"),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("message_id", sa.Text, nullable=True),
        sa.Column("recipients", pg.ARRAY(sa.Text), nullable=True),
        sa.Column("refused_recipients", pg.JSONB, nullable=True),
        sa.Column("period_start", sa.Date, nullable=True),
        sa.Column("period_end", sa.Date, nullable=True),
        sa.Column("claimed_at", sa.DateTime, nullable=True),
        sa.Column("next_attempt_at", sa.DateTime, nullable=True),
        sa.Column("sent_at", sa.DateTime, nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False, server_default=now),
        sa.Column("updated_at", sa.DateTime, nullable=False, server_default=now),
        sa.PrimaryKeyConstraint("id", name="report_deliveries_pkey"),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["scheduled_reports.id"],
            ondelete="CASCADE",
            name="report_deliveries_report_id_fkey",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["organizations.id"], ondelete="CASCADE", name="report_deliveries_tenant_id_fkey"
        ),
        sa.UniqueConstraint(
            "report_id", "scheduled_for", name="report_deliveries_report_id_scheduled_for_key"
        ),
        sa.CheckConstraint(
            _in("status", ("sending", "retrying", "sent", "failed")), name="report_deliveries_status_check"
        ),
        sa.CheckConstraint(_in("trigger", ("schedule", "manual")), name="report_deliveries_trigger_check"),
    )
    op.create_index(
        "report_deliveries_tenant_id_scheduled_for_idx",
        "report_deliveries",
        ["tenant_id", sa.text("scheduled_for DESC")],
    )
    op.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON report_deliveries TO analytics_app")
    op.execute("ALTER TABLE report_deliveries ENABLE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY report_deliveries_tenant_isolation ON report_deliveries FOR ALL TO analytics_app "
        f"USING ({TENANT_MATCHES}) WITH CHECK ({TENANT_MATCHES})"
    )


def downgrade() -> None:
    op.drop_table("report_deliveries")  # its policy and grants go with it
    op.drop_constraint("scheduled_reports_frequency_check", "scheduled_reports", type_="check")
    op.drop_constraint("scheduled_reports_report_type_check", "scheduled_reports", type_="check")
