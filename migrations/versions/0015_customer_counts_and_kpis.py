"""Customer counts and the SaaS KPIs (docs/metrics.md#customers, docs/metrics.md#kpis).

tenant_mrr_days and revenue_aggregates gain the customer counts: active_customers (customers with
MRR > 0 at the end of the day or period, a level like mrr) and new_customers,
reactivated_customers and churned_customers (flows with the day rules of the MRR movements,
summed over the period's days). Both are filled here from the stored MRR state, so that a
database upgraded with rows already written has their counts without a backfill: tenant_mrr_days
from customer_mrr_days, the day rows of revenue_aggregates from tenant_mrr_days, the longer
periods from their day rows (docs/metrics.md#periods).

Month rows gain the figures of the trailing-twelve-month NRR and GRR (docs/metrics.md#ttm-nrr):
the MRR of the customers paying at the end of the month twelve months before, then and now, and
now capped at then; computed from customer_mrr_days, here for the existing month rows and by each
run for the months it writes. Stored rather than computed by the view: reading a tenant's customer
MRR days for each of 36 months took seconds, the stored figures are one row each.

The view revenue_kpis derives the KPIs row by row from revenue_aggregates; created with
security_invoker, so that the querying role's row-level security applies to the view as to the
table.

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
# Month rows only: the trailing-twelve-month cohort's MRR then and now, and now capped at then.
TTM = ("ttm_cohort_mrr_before", "ttm_cohort_mrr", "ttm_cohort_retained_mrr")

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

# The trailing-twelve-month cohort figures of every month row (docs/metrics.md#ttm-nrr), as
# analytics_pipeline/revenue/sql/ttm_rows.sql computes them: the cohort is the customers with MRR > 0
# at the end of the month twelve months before; "now" is the month's last stored day.
_FILL_TTM = """
WITH months AS (
    SELECT p.tenant_id, p.period_start, max(d.period_start) AS last_day,
           CAST(p.period_start - interval '11 months' - interval '1 day' AS date) AS base_day
    FROM revenue_aggregates AS p
    JOIN revenue_aggregates AS d
      ON d.tenant_id = p.tenant_id AND d.period_type = 'day'
     AND d.period_start BETWEEN p.period_start AND p.period_end
    WHERE p.period_type = 'month'
    GROUP BY p.tenant_id, p.period_start
),
points AS (
    SELECT tenant_id, base_day AS day FROM months
    UNION
    SELECT tenant_id, last_day FROM months
),
spans AS (
    SELECT m.tenant_id, m.user_id, m.mrr, m.day AS from_day,
           lead(m.day, 1, 'infinity') OVER (PARTITION BY m.tenant_id, m.user_id ORDER BY m.day) AS to_day
    FROM customer_mrr_days AS m
),
paying AS (
    SELECT p.tenant_id, p.day, s.user_id, s.mrr
    FROM points AS p
    JOIN spans AS s ON s.tenant_id = p.tenant_id AND s.from_day <= p.day AND p.day < s.to_day
    WHERE s.mrr > 0
),
cohorts AS (
    SELECT mo.tenant_id, mo.period_start,
           sum(b.mrr) AS mrr_before,
           sum(coalesce(n.mrr, 0)) AS mrr_now,
           sum(least(coalesce(n.mrr, 0), b.mrr)) AS retained_mrr
    FROM months AS mo
    JOIN paying AS b ON b.tenant_id = mo.tenant_id AND b.day = mo.base_day
    LEFT JOIN paying AS n ON n.tenant_id = mo.tenant_id AND n.day = mo.last_day AND n.user_id = b.user_id
    GROUP BY mo.tenant_id, mo.period_start
)
UPDATE revenue_aggregates AS r
SET ttm_cohort_mrr_before = coalesce(c.mrr_before, 0),
    ttm_cohort_mrr = coalesce(c.mrr_now, 0),
    ttm_cohort_retained_mrr = coalesce(c.retained_mrr, 0)
FROM months AS mo
LEFT JOIN cohorts AS c USING (tenant_id, period_start)
WHERE r.tenant_id = mo.tenant_id
  AND r.period_type = 'month'
  AND r.period_start = mo.period_start
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
    -- docs/metrics.md#ttm-nrr
    k.ttm_cohort_mrr / nullif(k.ttm_cohort_mrr_before, 0) AS ttm_nrr,
    -- docs/metrics.md#ttm-grr
    k.ttm_cohort_retained_mrr / nullif(k.ttm_cohort_mrr_before, 0) AS ttm_grr
FROM (
    SELECT
        r.*,
        r.mrr - (r.new_revenue + r.reactivation_revenue + r.expansion_revenue
                 - r.contraction_revenue - r.churned_revenue) AS opening_mrr,
        r.active_customers - (r.new_customers + r.reactivated_customers - r.churned_customers)
            AS opening_customers
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
    for column in TTM:
        op.add_column("revenue_aggregates", sa.Column(column, sa.Numeric(18, 2), nullable=True))
    op.execute(_FILL_TTM)
    op.execute(_REVENUE_KPIS)
    op.execute("GRANT SELECT ON revenue_kpis TO analytics_app")


def downgrade() -> None:
    op.execute("DROP VIEW revenue_kpis")
    for column in reversed(TTM):
        op.drop_column("revenue_aggregates", column)
    for table in ("revenue_aggregates", "tenant_mrr_days"):
        for column in reversed(COUNTS):
            op.drop_column(table, column)
