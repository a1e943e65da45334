"""The MRR state: customer_mrr_days (per customer and day on which their MRR changed: MRR at the
end of the day and the day's movement) and tenant_mrr_days (per tenant and such day: the sums of
the movements and the tenant's MRR), maintained by the subscription history's absorb for the
customers with new subscription events only (docs/metrics.md#mrr-state). An hourly run of
revenue_aggregates then reads the window's days and one opening row per tenant instead of the
whole subscription history.

Both are built here from the existing subscription history, with the statements the absorb uses,
so that a database upgraded with events already absorbed has its state. Row-level security and
grants as revision 0009 gives the other derived state tables; money is NUMERIC(18,2).

Revision ID: 0014_customer_mrr_state
Revises: 0012_payment_state
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_customer_mrr_state"
down_revision = "0013_report_channels"
branch_labels = None
depends_on = None

TENANT_MATCHES = "tenant_id = current_setting('app.tenant_id', true)"
MOVEMENTS = ("new_revenue", "reactivation_revenue", "expansion_revenue", "contraction_revenue", "churned_revenue")


def _tenant_fk() -> sa.Column:
    return sa.Column("tenant_id", sa.Text, sa.ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False)


def _money(name: str) -> sa.Column:
    return sa.Column(name, sa.Numeric(18, 2), nullable=False)


def upgrade() -> None:
    op.create_table(
        "customer_mrr_days",
        _tenant_fk(),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        _money("mrr"),
        *(_money(m) for m in MOVEMENTS),
        sa.PrimaryKeyConstraint("tenant_id", "user_id", "day", name="customer_mrr_days_pkey"),
    )
    op.create_index("customer_mrr_days_tenant_day_idx", "customer_mrr_days", ["tenant_id", "day"])
    op.create_table(
        "tenant_mrr_days",
        _tenant_fk(),
        sa.Column("day", sa.Date, nullable=False),
        _money("mrr"),
        *(_money(m) for m in MOVEMENTS),
        sa.PrimaryKeyConstraint("tenant_id", "day", name="tenant_mrr_days_pkey"),
    )
    for table in ("customer_mrr_days", "tenant_mrr_days"):
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO analytics_app")
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY {table}_tenant_isolation ON {table} FOR ALL TO analytics_app "
            f"USING ({TENANT_MATCHES}) WITH CHECK ({TENANT_MATCHES})"
        )
    # Imported here: the state must be built by the same statements that maintain it.
    from analytics_pipeline.revenue.assets import build_mrr_state

    build_mrr_state(op.get_bind())


def downgrade() -> None:
    op.drop_table("tenant_mrr_days")
    op.drop_table("customer_mrr_days")
