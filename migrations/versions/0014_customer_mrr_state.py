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
    # Unbounded, like the other state sums: a tenant's MRR that no aggregate column can hold must
    # not stop the absorb for every tenant; the aggregates hold it back (values_fit_columns).
    return sa.Column(name, sa.Numeric, nullable=False)


# Every customer of the subscription history from their first event, then
# analytics_pipeline/revenue/sql/{delete,insert}_{customer,tenant}_mrr_days.sql as of this revision.
_ALL_CUSTOMERS = r"""
CREATE TEMP TABLE revenue_changed_customers ON COMMIT DROP AS
SELECT tenant_id, user_id, min(occurred_at)::date AS from_day
FROM subscription_events
GROUP BY tenant_id, user_id
"""

_BUILD_STATEMENTS = (
    r"""
-- The changed customers' MRR days from their first changed day on, which
-- insert_customer_mrr_days.sql writes again (docs/metrics.md#mrr-state).
DELETE FROM customer_mrr_days AS m
USING revenue_changed_customers AS c
WHERE m.tenant_id = c.tenant_id
  AND m.user_id = c.user_id
  AND m.day >= c.from_day
""",
    r"""
-- The MRR state of each changed customer (revenue_changed_customers), from their first changed
-- day on: one row per day on which the customer's MRR changed, with their MRR at the end of the
-- day and the day's movement. Computed from the customer's whole subscription history (a
-- customer has few events), so whether they "ever had MRR before" sees every earlier day.
-- Definitions: docs/metrics.md#mrr, docs/metrics.md#mrr-movements, docs/metrics.md#mrr-state.
INSERT INTO customer_mrr_days (
    tenant_id, user_id, day, mrr,
    new_revenue, reactivation_revenue, expansion_revenue, contraction_revenue, churned_revenue
)
WITH segmented AS (
    -- Each start or cancellation opens a segment of the subscription's life.
    SELECT
        s.tenant_id, s.user_id, s.subscription_id, s.occurred_at, s.event_id, s.event_type, s.monthly_value,
        count(*) FILTER (WHERE s.event_type <> 'subscription_changed') OVER (
            PARTITION BY s.tenant_id, s.user_id, s.subscription_id ORDER BY s.occurred_at, s.event_id
        ) AS segment
    FROM subscription_events AS s
    JOIN revenue_changed_customers AS c ON c.tenant_id = s.tenant_id AND c.user_id = s.user_id
),
valued AS (
    -- In a segment opened by a start the subscription is worth its latest price; in one opened
    -- by a cancellation (or before any start) it is worth nothing.
    SELECT
        tenant_id, user_id, subscription_id, occurred_at, event_id,
        CASE WHEN first_value(event_type) OVER (
                      PARTITION BY tenant_id, user_id, subscription_id, segment
                      ORDER BY occurred_at, event_id
                  ) = 'subscription_started'
             THEN monthly_value ELSE 0 END AS value_after
    FROM segmented
),
subscription_days AS (
    -- The subscription's value at the end of each day on which it had events.
    SELECT DISTINCT ON (tenant_id, user_id, subscription_id, occurred_at::date)
        tenant_id, user_id, subscription_id, occurred_at::date AS day, value_after
    FROM valued
    ORDER BY tenant_id, user_id, subscription_id, occurred_at::date, occurred_at DESC, event_id DESC
),
customer_days AS (
    SELECT tenant_id, user_id, day, sum(delta) AS net
    FROM (
        SELECT
            tenant_id, user_id, day,
            value_after - coalesce(lag(value_after) OVER (
                PARTITION BY tenant_id, user_id, subscription_id ORDER BY day
            ), 0) AS delta
        FROM subscription_days
    ) AS deltas
    GROUP BY tenant_id, user_id, day
),
customer_mrr AS (
    SELECT
        tenant_id, user_id, day,
        sum(net) OVER (PARTITION BY tenant_id, user_id ORDER BY day) - net AS mrr_before,
        sum(net) OVER (PARTITION BY tenant_id, user_id ORDER BY day) AS mrr_after
    FROM customer_days
),
customer_history AS (
    -- Whether the customer ended any earlier day with MRR > 0: decides new vs reactivation.
    SELECT
        *,
        coalesce(bool_or(mrr_after > 0) OVER (
            PARTITION BY tenant_id, user_id ORDER BY day
            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
        ), false) AS had_mrr
    FROM customer_mrr
)
SELECT
    h.tenant_id,
    h.user_id,
    h.day,
    h.mrr_after,
    CASE WHEN mrr_before = 0 AND mrr_after > 0 AND NOT had_mrr THEN mrr_after ELSE 0 END,
    CASE WHEN mrr_before = 0 AND mrr_after > 0 AND had_mrr THEN mrr_after ELSE 0 END,
    CASE WHEN mrr_before > 0 AND mrr_after > mrr_before THEN mrr_after - mrr_before ELSE 0 END,
    CASE WHEN mrr_before > 0 AND mrr_after > 0 AND mrr_after < mrr_before THEN mrr_before - mrr_after ELSE 0 END,
    CASE WHEN mrr_before > 0 AND mrr_after = 0 THEN mrr_before ELSE 0 END
FROM customer_history AS h
JOIN revenue_changed_customers AS c ON c.tenant_id = h.tenant_id AND c.user_id = h.user_id
-- Changes that cancel out within the day are no movement and leave no row.
WHERE h.day >= c.from_day
  AND h.mrr_after <> h.mrr_before
""",
    r"""
-- The tenant MRR days of the changed customers' tenants from the first changed day of any of
-- their customers on, which insert_tenant_mrr_days.sql writes again (docs/metrics.md#mrr-state).
DELETE FROM tenant_mrr_days AS t
USING (
    SELECT tenant_id, min(from_day) AS from_day FROM revenue_changed_customers GROUP BY tenant_id
) AS c
WHERE t.tenant_id = c.tenant_id
  AND t.day >= c.from_day
""",
    r"""
-- The changed tenants' MRR days from their first changed day on: per day on which any customer's
-- MRR changed, the sums of the customers' movements and the tenant's MRR at the end of the day,
-- which is its MRR at the end of the last day before (the row kept before that day) plus the
-- running sum of the movements (the MRR bridge, docs/metrics.md#mrr-movements).
INSERT INTO tenant_mrr_days (
    tenant_id, day, mrr,
    new_revenue, reactivation_revenue, expansion_revenue, contraction_revenue, churned_revenue
)
WITH changed AS (
    SELECT tenant_id, min(from_day) AS from_day FROM revenue_changed_customers GROUP BY tenant_id
),
opening AS (
    SELECT c.tenant_id, c.from_day, coalesce((
        SELECT t.mrr FROM tenant_mrr_days AS t
        WHERE t.tenant_id = c.tenant_id AND t.day < c.from_day
        ORDER BY t.day DESC
        LIMIT 1
    ), 0) AS mrr
    FROM changed AS c
),
days AS (
    SELECT
        m.tenant_id, m.day,
        sum(m.new_revenue) AS new_revenue,
        sum(m.reactivation_revenue) AS reactivation_revenue,
        sum(m.expansion_revenue) AS expansion_revenue,
        sum(m.contraction_revenue) AS contraction_revenue,
        sum(m.churned_revenue) AS churned_revenue,
        sum(m.new_revenue + m.reactivation_revenue + m.expansion_revenue
            - m.contraction_revenue - m.churned_revenue) AS net
    FROM opening AS o
    JOIN customer_mrr_days AS m ON m.tenant_id = o.tenant_id AND m.day >= o.from_day
    GROUP BY m.tenant_id, m.day
)
SELECT
    d.tenant_id,
    d.day,
    o.mrr + sum(d.net) OVER (PARTITION BY d.tenant_id ORDER BY d.day),
    d.new_revenue, d.reactivation_revenue, d.expansion_revenue, d.contraction_revenue, d.churned_revenue
FROM days AS d
JOIN opening AS o USING (tenant_id)
""",
)


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
    # The state of every customer of the existing subscription history, by the statements that
    # maintained it when this revision was written (a migration keeps its own copy: the project's
    # SQL may change later, this revision's effect may not).
    op.execute(_ALL_CUSTOMERS)
    op.execute("ANALYZE revenue_changed_customers")
    for statement in _BUILD_STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("tenant_mrr_days")
    op.drop_table("customer_mrr_days")
