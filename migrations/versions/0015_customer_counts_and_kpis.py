"""Customer counts and the SaaS KPIs (docs/metrics.md#customers, docs/metrics.md#kpis).

tenant_mrr_days and revenue_aggregates gain the customer counts: active_customers (customers with
MRR > 0 at the end of the day or period, a level like mrr) and new_customers,
reactivated_customers and churned_customers (flows with the day rules of the MRR movements,
summed over the period's days). Both are filled here from the stored MRR state, so that a
database upgraded with rows already written has their counts without a backfill: tenant_mrr_days
from customer_mrr_days, the day rows of revenue_aggregates from tenant_mrr_days, the longer
periods from their day rows (docs/metrics.md#periods).

The view revenue_kpis derives the KPIs row by row from revenue_aggregates; created with
security_invoker, so that the querying role's row-level security applies to the view as to the
table. customer_mrr_at(tenant, day) gives each customer's MRR at the end of a day from
customer_mrr_days; the view's trailing-twelve-month NRR and GRR use it.

Revision ID: 0015_customer_counts_and_kpis
Revises: 0014_customer_mrr_state
"""

import sqlalchemy as sa
from alembic import op

revision = "0015_customer_counts_and_kpis"
down_revision = "0014_customer_mrr_state"
branch_labels = None
depends_on = None

COUNTS = ("active_customers", "new_customers", "reactivated_customers", "churned_customers")

# A customer's day in customer_mrr_days is new, a reactivation or a churn exactly when its
# movement of that kind is non-zero: each is the customer's MRR after or before, which is > 0 there
# (docs/metrics.md#customers). Active customers are the running sum of the three flows.
_FILL_TENANT_MRR_DAYS = """
UPDATE tenant_mrr_days AS t
SET active_customers = c.active_customers,
    new_customers = c.new_customers,
    reactivated_customers = c.reactivated_customers,
    churned_customers = c.churned_customers
FROM (
    SELECT
        tenant_id, day, new_customers, reactivated_customers, churned_customers,
        sum(new_customers + reactivated_customers - churned_customers)
            OVER (PARTITION BY tenant_id ORDER BY day) AS active_customers
    FROM (
        SELECT
            tenant_id, day,
            count(*) FILTER (WHERE new_revenue > 0) AS new_customers,
            count(*) FILTER (WHERE reactivation_revenue > 0) AS reactivated_customers,
            count(*) FILTER (WHERE churned_revenue > 0) AS churned_customers
        FROM customer_mrr_days
        GROUP BY tenant_id, day
    ) AS days
) AS c
WHERE t.tenant_id = c.tenant_id
  AND t.day = c.day
"""

# A day row: the flows of its own tenant MRR day, if any, and the active customers of the last
# tenant MRR day up to it.
_FILL_DAY_ROWS = """
UPDATE revenue_aggregates AS r
SET active_customers = s.active_customers,
    new_customers = s.new_customers,
    reactivated_customers = s.reactivated_customers,
    churned_customers = s.churned_customers
FROM (
    SELECT
        d.id,
        coalesce(l.active_customers, 0) AS active_customers,
        CASE WHEN l.day = d.period_start THEN l.new_customers ELSE 0 END AS new_customers,
        CASE WHEN l.day = d.period_start THEN l.reactivated_customers ELSE 0 END AS reactivated_customers,
        CASE WHEN l.day = d.period_start THEN l.churned_customers ELSE 0 END AS churned_customers
    FROM revenue_aggregates AS d
    LEFT JOIN LATERAL (
        SELECT t.day, t.active_customers, t.new_customers, t.reactivated_customers, t.churned_customers
        FROM tenant_mrr_days AS t
        WHERE t.tenant_id = d.tenant_id AND t.day <= d.period_start
        ORDER BY t.day DESC
        LIMIT 1
    ) AS l ON true
    WHERE d.period_type = 'day'
) AS s
WHERE r.id = s.id
"""

# A longer period: active customers of its last stored day, flows summed over its day rows
# (docs/metrics.md#periods), as analytics_pipeline/revenue/sql/period_rows.sql computes them.
_FILL_PERIOD_ROWS = """
UPDATE revenue_aggregates AS r
SET active_customers = s.active_customers,
    new_customers = s.new_customers,
    reactivated_customers = s.reactivated_customers,
    churned_customers = s.churned_customers
FROM (
    SELECT
        p.id,
        (array_agg(d.active_customers ORDER BY d.period_start DESC))[1] AS active_customers,
        sum(d.new_customers) AS new_customers,
        sum(d.reactivated_customers) AS reactivated_customers,
        sum(d.churned_customers) AS churned_customers
    FROM revenue_aggregates AS p
    JOIN revenue_aggregates AS d
      ON d.tenant_id = p.tenant_id AND d.period_type = 'day'
     AND d.period_start BETWEEN p.period_start AND p.period_end
    WHERE p.period_type <> 'day'
    GROUP BY p.id
) AS s
WHERE r.id = s.id
"""

# Each customer's MRR at the end of a day: their last MRR day up to it (docs/metrics.md#mrr-state).
# A SQL function the planner inlines, run with the caller's rights (row-level security applies).
_CUSTOMER_MRR_AT = """
CREATE FUNCTION customer_mrr_at(tenant text, at_day date)
RETURNS TABLE (user_id text, mrr numeric)
LANGUAGE sql STABLE
AS $$
    SELECT DISTINCT ON (m.user_id) m.user_id, m.mrr
    FROM customer_mrr_days AS m
    WHERE m.tenant_id = tenant AND m.day <= at_day
    ORDER BY m.user_id, m.day DESC
$$
"""

# The KPIs of every revenue_aggregates row (definitions: docs/metrics.md#kpis and the anchor
# cited by each column; conventions: docs/metrics.md#kpi-conventions). A zero denominator gives
# NULL (nullif), never an error and never 0. Rates and ratios are fractions (1.0 = 100%).
_REVENUE_KPIS = """
CREATE VIEW revenue_kpis WITH (security_invoker = true) AS
SELECT
    k.tenant_id, k.period_type, k.period_start, k.period_end, k.mrr, k.arr,
    k.active_customers, k.new_customers, k.reactivated_customers, k.churned_customers,
    -- docs/metrics.md#opening-mrr: the MRR bridge read backwards.
    k.opening_mrr,
    -- docs/metrics.md#opening-customers: the customer bridge read backwards.
    k.opening_customers,
    -- docs/metrics.md#arpa
    round(k.mrr / nullif(k.active_customers, 0), 2) AS arpa,
    -- docs/metrics.md#logo-churn-rate
    k.churned_customers / nullif(k.opening_customers, 0)::numeric AS logo_churn_rate,
    -- docs/metrics.md#gross-mrr-churn-rate
    (k.churned_revenue + k.contraction_revenue) / nullif(k.opening_mrr, 0) AS gross_mrr_churn_rate,
    -- docs/metrics.md#net-mrr-churn-rate
    (k.churned_revenue + k.contraction_revenue - k.expansion_revenue - k.reactivation_revenue)
        / nullif(k.opening_mrr, 0) AS net_mrr_churn_rate,
    -- docs/metrics.md#grr
    (k.opening_mrr - k.churned_revenue - k.contraction_revenue) / nullif(k.opening_mrr, 0) AS grr,
    -- docs/metrics.md#nrr
    (k.opening_mrr + k.expansion_revenue - k.contraction_revenue - k.churned_revenue)
        / nullif(k.opening_mrr, 0) AS nrr,
    -- docs/metrics.md#quick-ratio
    (k.new_revenue + k.expansion_revenue + k.reactivation_revenue)
        / nullif(k.churned_revenue + k.contraction_revenue, 0) AS quick_ratio,
    -- docs/metrics.md#ttm-nrr: computed only when selected (a scalar subquery of a flattened view).
    CASE WHEN k.period_type = 'month' THEN (
        SELECT sum(coalesce(now_.mrr, 0)) / nullif(sum(then_.mrr), 0)
        FROM customer_mrr_at(k.tenant_id, k.ttm_base_day) AS then_
        LEFT JOIN customer_mrr_at(k.tenant_id, k.period_end) AS now_ USING (user_id)
        WHERE then_.mrr > 0
    ) END AS ttm_nrr,
    -- docs/metrics.md#ttm-grr
    CASE WHEN k.period_type = 'month' THEN (
        SELECT sum(least(coalesce(now_.mrr, 0), then_.mrr)) / nullif(sum(then_.mrr), 0)
        FROM customer_mrr_at(k.tenant_id, k.ttm_base_day) AS then_
        LEFT JOIN customer_mrr_at(k.tenant_id, k.period_end) AS now_ USING (user_id)
        WHERE then_.mrr > 0
    ) END AS ttm_grr
FROM (
    SELECT
        r.*,
        r.mrr - (r.new_revenue + r.reactivation_revenue + r.expansion_revenue
                 - r.contraction_revenue - r.churned_revenue) AS opening_mrr,
        r.active_customers - (r.new_customers + r.reactivated_customers - r.churned_customers)
            AS opening_customers,
        -- The last day of the month twelve months before (docs/metrics.md#ttm-nrr).
        CAST(r.period_start - interval '11 months' - interval '1 day' AS date) AS ttm_base_day
    FROM revenue_aggregates AS r
) AS k
"""


def upgrade() -> None:
    for table in ("tenant_mrr_days", "revenue_aggregates"):
        for column in COUNTS:
            op.add_column(table, sa.Column(column, sa.Integer, nullable=False, server_default="0"))
    op.execute(_FILL_TENANT_MRR_DAYS)
    op.execute(_FILL_DAY_ROWS)
    op.execute(_FILL_PERIOD_ROWS)
    op.execute(_CUSTOMER_MRR_AT)
    op.execute(_REVENUE_KPIS)
    op.execute("GRANT EXECUTE ON FUNCTION customer_mrr_at(text, date) TO analytics_app")
    op.execute("GRANT SELECT ON revenue_kpis TO analytics_app")


def downgrade() -> None:
    op.execute("DROP VIEW revenue_kpis")
    op.execute("DROP FUNCTION customer_mrr_at(text, date)")
    for table in ("revenue_aggregates", "tenant_mrr_days"):
        for column in reversed(COUNTS):
            op.drop_column(table, column)
