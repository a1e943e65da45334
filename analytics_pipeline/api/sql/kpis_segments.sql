-- The KPIs of each value of the dimension :segment over two spans of :period_type periods, as
-- kpis.sql compares them for the tenant (the current [:current_first, :current_last] of the period
-- starting :current_start against the previous [:previous_first, :previous_last] of the one
-- starting :previous_start; docs/api.md#kpis), from revenue_segments
-- (docs/metrics.md#segment-kpis). A whole period is the value's row; part of a period its day
-- rows, flows summed and levels those of the last day row (docs/metrics.md#periods).
--
-- The opening MRR and customers are the value's bridges read backwards, transfers included; the
-- rates count the value's churned and contraction only, never a transfer out
-- (docs/metrics.md#segment-kpis, docs/metrics.md#kpi-conventions). Every value with a row in either
-- span has every KPI; a span without the value's row has 0 of each stored figure (`if_no_row`),
-- a KPI whose denominator is 0 is NULL. Values by current MRR, largest first, then by name; each
-- KPI's change against the previous span by the SQL functions of migration 0020.
WITH spans AS (
    SELECT * FROM (VALUES
        ('current', CAST(:current_start AS date), CAST(:current_first AS date), CAST(:current_last AS date),
         CAST(:current_whole AS boolean)),
        ('previous', CAST(:previous_start AS date), CAST(:previous_first AS date), CAST(:previous_last AS date),
         CAST(:previous_whole AS boolean))
    ) AS s(side, start_day, first_day, last_day, whole)
),
whole_periods AS (
    SELECT s.side, r.value, r.mrr, r.arr, r.new_revenue, r.expansion_revenue, r.reactivation_revenue,
           r.contraction_revenue, r.churned_revenue, r.transfer_in_revenue, r.transfer_out_revenue,
           r.active_customers, r.new_customers, r.reactivated_customers, r.churned_customers,
           r.transferred_in_customers, r.transferred_out_customers
    FROM spans AS s
    JOIN revenue_segments AS r
      ON r.tenant_id = :tenant_id AND r.period_type = :period_type AND r.dimension = :segment
     AND r.period_start = s.start_day
    WHERE s.whole
),
part_periods AS (
    SELECT s.side, d.value,
           (array_agg(d.mrr ORDER BY d.period_start DESC))[1] AS mrr,
           (array_agg(d.arr ORDER BY d.period_start DESC))[1] AS arr,
           sum(d.new_revenue) AS new_revenue, sum(d.expansion_revenue) AS expansion_revenue,
           sum(d.reactivation_revenue) AS reactivation_revenue, sum(d.contraction_revenue) AS contraction_revenue,
           sum(d.churned_revenue) AS churned_revenue, sum(d.transfer_in_revenue) AS transfer_in_revenue,
           sum(d.transfer_out_revenue) AS transfer_out_revenue,
           (array_agg(d.active_customers ORDER BY d.period_start DESC))[1] AS active_customers,
           sum(d.new_customers) AS new_customers, sum(d.reactivated_customers) AS reactivated_customers,
           sum(d.churned_customers) AS churned_customers, sum(d.transferred_in_customers) AS transferred_in_customers,
           sum(d.transferred_out_customers) AS transferred_out_customers
    FROM spans AS s
    JOIN revenue_segments AS d
      ON d.tenant_id = :tenant_id AND d.period_type = 'day' AND d.dimension = :segment
     AND d.period_start BETWEEN s.first_day AND s.last_day
    WHERE NOT s.whole
    GROUP BY s.side, d.value
),
figures AS (
    SELECT p.*,
           -- docs/metrics.md#segment-kpis: the value's bridge, transfers included
           p.new_revenue + p.reactivation_revenue + p.expansion_revenue - p.contraction_revenue
               - p.churned_revenue + p.transfer_in_revenue - p.transfer_out_revenue AS net_new_mrr,
           p.active_customers - (p.new_customers + p.reactivated_customers - p.churned_customers
                                 + p.transferred_in_customers - p.transferred_out_customers) AS opening_customers
    FROM (SELECT * FROM whole_periods UNION ALL SELECT * FROM part_periods) AS p
),
periods AS (
    SELECT f.*,
           -- docs/metrics.md#segment-kpis, each formula the tenant's (docs/metrics.md#kpis)
           round(f.mrr / nullif(f.active_customers, 0), 2) AS arpa,
           f.churned_customers / nullif(f.opening_customers, 0)::numeric AS logo_churn_rate,
           (f.churned_revenue + f.contraction_revenue) / nullif(f.mrr - f.net_new_mrr, 0) AS gross_mrr_churn_rate,
           (f.churned_revenue + f.contraction_revenue - f.expansion_revenue - f.reactivation_revenue)
               / nullif(f.mrr - f.net_new_mrr, 0) AS net_mrr_churn_rate,
           (f.mrr - f.net_new_mrr - f.churned_revenue - f.contraction_revenue) / nullif(f.mrr - f.net_new_mrr, 0) AS grr,
           (f.mrr - f.net_new_mrr + f.expansion_revenue - f.contraction_revenue - f.churned_revenue)
               / nullif(f.mrr - f.net_new_mrr, 0) AS nrr,
           (f.new_revenue + f.expansion_revenue + f.reactivation_revenue)
               / nullif(f.churned_revenue + f.contraction_revenue, 0) AS quick_ratio
    FROM figures AS f
),
segment_values AS (
    SELECT DISTINCT value FROM periods
)
SELECT v.value, k.kpi, k.unit, x.current, x.previous, analytics_change_pct(x.current, x.previous) AS change_pct,
       CASE WHEN k.unit = 'ratio' THEN analytics_change_points(x.current, x.previous) END AS change_points
FROM segment_values AS v
LEFT JOIN periods AS c ON c.value = v.value AND c.side = 'current'
LEFT JOIN periods AS p ON p.value = v.value AND p.side = 'previous'
CROSS JOIN LATERAL (VALUES
    (1, 'mrr', 'amount', c.mrr, p.mrr, 0),
    (2, 'arr', 'amount', c.arr, p.arr, 0),
    (3, 'new_revenue', 'amount', c.new_revenue, p.new_revenue, 0),
    (4, 'expansion_revenue', 'amount', c.expansion_revenue, p.expansion_revenue, 0),
    (5, 'reactivation_revenue', 'amount', c.reactivation_revenue, p.reactivation_revenue, 0),
    (6, 'contraction_revenue', 'amount', c.contraction_revenue, p.contraction_revenue, 0),
    (7, 'churned_revenue', 'amount', c.churned_revenue, p.churned_revenue, 0),
    (8, 'transfer_in_revenue', 'amount', c.transfer_in_revenue, p.transfer_in_revenue, 0),
    (9, 'transfer_out_revenue', 'amount', c.transfer_out_revenue, p.transfer_out_revenue, 0),
    (10, 'net_new_mrr', 'amount', c.net_new_mrr, p.net_new_mrr, 0),
    (11, 'active_customers', 'count', c.active_customers, p.active_customers, 0),
    (12, 'new_customers', 'count', c.new_customers, p.new_customers, 0),
    (13, 'reactivated_customers', 'count', c.reactivated_customers, p.reactivated_customers, 0),
    (14, 'churned_customers', 'count', c.churned_customers, p.churned_customers, 0),
    (15, 'transferred_in_customers', 'count', c.transferred_in_customers, p.transferred_in_customers, 0),
    (16, 'transferred_out_customers', 'count', c.transferred_out_customers, p.transferred_out_customers, 0),
    (17, 'arpa', 'amount', c.arpa, p.arpa, NULL),
    (18, 'logo_churn_rate', 'ratio', c.logo_churn_rate, p.logo_churn_rate, NULL),
    (19, 'gross_mrr_churn_rate', 'ratio', c.gross_mrr_churn_rate, p.gross_mrr_churn_rate, NULL),
    (20, 'net_mrr_churn_rate', 'ratio', c.net_mrr_churn_rate, p.net_mrr_churn_rate, NULL),
    (21, 'grr', 'ratio', c.grr, p.grr, NULL),
    (22, 'nrr', 'ratio', c.nrr, p.nrr, NULL),
    (23, 'quick_ratio', 'number', c.quick_ratio, p.quick_ratio, NULL)
) AS k(position, kpi, unit, current, previous, if_no_row)
CROSS JOIN LATERAL (
    SELECT coalesce(k.current, k.if_no_row) AS current, coalesce(k.previous, k.if_no_row) AS previous
) AS x
ORDER BY coalesce(c.mrr, 0) DESC, v.value, k.position
