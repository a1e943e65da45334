-- KPIs of the :period_type period containing :day against the period before it. MRR and ARR are
-- levels (the period's last computed day), the movements flows (docs/metrics.md#mrr-movements),
-- net new MRR their balance (docs/metrics.md#net-new-mrr); the customer counts
-- (docs/metrics.md#customers) and the SaaS KPIs (docs/metrics.md#kpis) are the view
-- revenue_kpis's for the period's row. A period without a row has no MRR, no movement and no
-- customer (docs/metrics.md#which-rows-exist): those are 0 then (`if_no_row`), while a KPI whose
-- denominator is 0 stays NULL. Units: amount (currency), count, ratio (a fraction, 1 = 100 %),
-- number (the quick ratio). One row per KPI: a new KPI is one more line of the VALUES list. Each
-- KPI's change against the period before is the reports' (migration 0020): change_pct in percent
-- of the previous value, and for a ratio also change_points, in percentage points.
WITH bounds AS (
    SELECT date_trunc(:period_type, CAST(:day AS date))::date AS current_start,
           date_trunc(:period_type, date_trunc(:period_type, CAST(:day AS date)) - interval '1 day')::date AS previous_start
),
periods AS (
    SELECT CASE WHEN r.period_start = b.current_start THEN 'current' ELSE 'previous' END AS side, r.*,
           k.opening_mrr, k.opening_customers, k.arpa, k.logo_churn_rate, k.gross_mrr_churn_rate,
           k.net_mrr_churn_rate, k.grr, k.nrr, k.quick_ratio, k.ttm_nrr, k.ttm_grr
    FROM revenue_aggregates AS r
    JOIN revenue_kpis AS k USING (tenant_id, period_type, period_start)
    CROSS JOIN bounds AS b
    WHERE r.tenant_id = :tenant_id
      AND r.period_type = :period_type
      AND r.period_start IN (b.current_start, b.previous_start)
)
SELECT f.kpi, f.unit, v.current, v.previous, analytics_change_pct(v.current, v.previous) AS change_pct,
       CASE WHEN f.unit = 'ratio' THEN analytics_change_points(v.current, v.previous) END AS change_points,
       b.current_start, b.previous_start
FROM bounds AS b
LEFT JOIN periods AS c ON c.side = 'current'
LEFT JOIN periods AS p ON p.side = 'previous'
CROSS JOIN LATERAL (VALUES
    (1, 'mrr', 'amount', c.mrr, p.mrr, 0),
    (2, 'arr', 'amount', c.arr, p.arr, 0),
    (3, 'new_revenue', 'amount', c.new_revenue, p.new_revenue, 0),
    (4, 'expansion_revenue', 'amount', c.expansion_revenue, p.expansion_revenue, 0),
    (5, 'reactivation_revenue', 'amount', c.reactivation_revenue, p.reactivation_revenue, 0),
    (6, 'contraction_revenue', 'amount', c.contraction_revenue, p.contraction_revenue, 0),
    (7, 'churned_revenue', 'amount', c.churned_revenue, p.churned_revenue, 0),
    (8, 'net_new_mrr', 'amount',
        c.new_revenue + c.reactivation_revenue + c.expansion_revenue - c.contraction_revenue - c.churned_revenue,
        p.new_revenue + p.reactivation_revenue + p.expansion_revenue - p.contraction_revenue - p.churned_revenue, 0),
    (9, 'total_revenue', 'amount', c.total_revenue, p.total_revenue, 0),
    (10, 'active_customers', 'count', c.active_customers, p.active_customers, 0),
    (11, 'new_customers', 'count', c.new_customers, p.new_customers, 0),
    (12, 'reactivated_customers', 'count', c.reactivated_customers, p.reactivated_customers, 0),
    (13, 'churned_customers', 'count', c.churned_customers, p.churned_customers, 0),
    (14, 'arpa', 'amount', c.arpa, p.arpa, NULL),
    (15, 'logo_churn_rate', 'ratio', c.logo_churn_rate, p.logo_churn_rate, NULL),
    (16, 'gross_mrr_churn_rate', 'ratio', c.gross_mrr_churn_rate, p.gross_mrr_churn_rate, NULL),
    (17, 'net_mrr_churn_rate', 'ratio', c.net_mrr_churn_rate, p.net_mrr_churn_rate, NULL),
    (18, 'grr', 'ratio', c.grr, p.grr, NULL),
    (19, 'nrr', 'ratio', c.nrr, p.nrr, NULL),
    (20, 'quick_ratio', 'number', c.quick_ratio, p.quick_ratio, NULL),
    (21, 'ttm_nrr', 'ratio', c.ttm_nrr, p.ttm_nrr, NULL),
    (22, 'ttm_grr', 'ratio', c.ttm_grr, p.ttm_grr, NULL)
) AS f(position, kpi, unit, current, previous, if_no_row)
CROSS JOIN LATERAL (
    SELECT coalesce(f.current, f.if_no_row) AS current, coalesce(f.previous, f.if_no_row) AS previous
) AS v
ORDER BY f.position
