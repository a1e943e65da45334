-- KPIs of two spans of :period_type periods, the current [:current_first, :current_last] of the
-- period starting :current_start and the previous [:previous_first, :previous_last] of the one
-- starting :previous_start (params.comparison: the period to date against as many days of the
-- period before, or two whole periods; docs/api.md#kpis). MRR, ARR and active customers are levels
-- (the span's last computed day), the movements, customer counts and refunds flows
-- (docs/metrics.md#mrr-movements, docs/metrics.md#customers, docs/metrics.md#payments), net new
-- MRR their balance (docs/metrics.md#net-new-mrr).
--
-- A whole period (:current_whole, :previous_whole) is its row of revenue_aggregates with the view
-- revenue_kpis's KPIs (docs/metrics.md#kpis). Part of a period is what its day rows make, as a
-- period row is made of its days (docs/metrics.md#periods): flows summed, levels those of the last
-- day row; its KPIs are the view's formulas (migration 0015) applied to those figures, and the
-- trailing-twelve-month ones, stored for whole months only, are NULL.
--
-- A span without a row has no MRR, no movement and no customer
-- (docs/metrics.md#which-rows-exist): those are 0 then (`if_no_row`), while a KPI whose
-- denominator is 0 stays NULL. Units: amount (currency), count, ratio (a fraction, 1 = 100 %),
-- number (the quick ratio). One row per KPI: a new KPI is one more line of the VALUES list. Each
-- KPI's change against the previous span is the reports' (migration 0020): change_pct in percent
-- of the previous value, and for a ratio also change_points, in percentage points.
WITH spans AS (
    SELECT * FROM (VALUES
        ('current', CAST(:current_start AS date), CAST(:current_first AS date), CAST(:current_last AS date),
         CAST(:current_whole AS boolean)),
        ('previous', CAST(:previous_start AS date), CAST(:previous_first AS date), CAST(:previous_last AS date),
         CAST(:previous_whole AS boolean))
    ) AS s(side, start_day, first_day, last_day, whole)
),
whole_periods AS (
    SELECT s.side, r.mrr, r.arr, r.new_revenue, r.expansion_revenue, r.reactivation_revenue,
           r.contraction_revenue, r.churned_revenue, r.total_revenue, r.active_customers, r.new_customers,
           r.reactivated_customers, r.churned_customers, r.refund_count, r.refund_amount, k.arpa, k.logo_churn_rate, k.gross_mrr_churn_rate,
           k.net_mrr_churn_rate, k.grr, k.nrr, k.quick_ratio, k.ttm_nrr, k.ttm_grr
    FROM spans AS s
    JOIN revenue_aggregates AS r
      ON r.tenant_id = :tenant_id AND r.period_type = :period_type AND r.period_start = s.start_day
    JOIN revenue_kpis AS k
      ON k.tenant_id = r.tenant_id AND k.period_type = r.period_type AND k.period_start = r.period_start
    WHERE s.whole
),
part_days AS (
    SELECT s.side,
           (array_agg(d.mrr ORDER BY d.period_start DESC))[1] AS mrr,
           (array_agg(d.arr ORDER BY d.period_start DESC))[1] AS arr,
           sum(d.new_revenue) AS new_revenue, sum(d.expansion_revenue) AS expansion_revenue,
           sum(d.reactivation_revenue) AS reactivation_revenue, sum(d.contraction_revenue) AS contraction_revenue,
           sum(d.churned_revenue) AS churned_revenue, sum(d.total_revenue) AS total_revenue,
           (array_agg(d.active_customers ORDER BY d.period_start DESC))[1] AS active_customers,
           sum(d.new_customers) AS new_customers, sum(d.reactivated_customers) AS reactivated_customers,
           sum(d.churned_customers) AS churned_customers, sum(d.refund_count) AS refund_count,
           sum(d.refund_amount) AS refund_amount
    FROM spans AS s
    JOIN revenue_aggregates AS d
      ON d.tenant_id = :tenant_id AND d.period_type = 'day' AND d.period_start BETWEEN s.first_day AND s.last_day
    WHERE NOT s.whole
    GROUP BY s.side
),
part_periods AS (
    SELECT p.side, p.mrr, p.arr, p.new_revenue, p.expansion_revenue, p.reactivation_revenue,
           p.contraction_revenue, p.churned_revenue, p.total_revenue, p.active_customers, p.new_customers,
           p.reactivated_customers, p.churned_customers, p.refund_count, p.refund_amount,
           -- docs/metrics.md#arpa
           round(p.mrr / nullif(p.active_customers, 0), 2) AS arpa,
           -- docs/metrics.md#logo-churn-rate
           p.churned_customers / nullif(p.opening_customers, 0)::numeric AS logo_churn_rate,
           -- docs/metrics.md#gross-mrr-churn-rate
           (p.churned_revenue + p.contraction_revenue) / nullif(p.opening_mrr, 0) AS gross_mrr_churn_rate,
           -- docs/metrics.md#net-mrr-churn-rate
           (p.churned_revenue + p.contraction_revenue - p.expansion_revenue - p.reactivation_revenue)
               / nullif(p.opening_mrr, 0) AS net_mrr_churn_rate,
           -- docs/metrics.md#grr
           (p.opening_mrr - p.churned_revenue - p.contraction_revenue) / nullif(p.opening_mrr, 0) AS grr,
           -- docs/metrics.md#nrr
           (p.opening_mrr + p.expansion_revenue - p.contraction_revenue - p.churned_revenue)
               / nullif(p.opening_mrr, 0) AS nrr,
           -- docs/metrics.md#quick-ratio
           (p.new_revenue + p.expansion_revenue + p.reactivation_revenue)
               / nullif(p.churned_revenue + p.contraction_revenue, 0) AS quick_ratio,
           CAST(NULL AS numeric) AS ttm_nrr, CAST(NULL AS numeric) AS ttm_grr
    FROM (
        SELECT *,
               -- docs/metrics.md#opening-mrr, docs/metrics.md#opening-customers
               mrr - (new_revenue + reactivation_revenue + expansion_revenue - contraction_revenue
                      - churned_revenue) AS opening_mrr,
               active_customers - (new_customers + reactivated_customers - churned_customers) AS opening_customers
        FROM part_days
    ) AS p
),
periods AS (
    SELECT * FROM whole_periods
    UNION ALL
    SELECT * FROM part_periods
)
SELECT f.kpi, f.unit, v.current, v.previous, analytics_change_pct(v.current, v.previous) AS change_pct,
       CASE WHEN f.unit = 'ratio' THEN analytics_change_points(v.current, v.previous) END AS change_points
FROM (SELECT 1) AS one
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
    (22, 'ttm_grr', 'ratio', c.ttm_grr, p.ttm_grr, NULL),
    (23, 'refund_count', 'count', c.refund_count, p.refund_count, 0),
    (24, 'refund_amount', 'amount', c.refund_amount, p.refund_amount, 0)
) AS f(position, kpi, unit, current, previous, if_no_row)
CROSS JOIN LATERAL (
    SELECT coalesce(f.current, f.if_no_row) AS current, coalesce(f.previous, f.if_no_row) AS previous
) AS v
ORDER BY f.position
