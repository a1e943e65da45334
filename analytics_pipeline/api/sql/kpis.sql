-- KPIs of the :period_type period containing :day against the period before it. MRR and ARR are
-- levels (the period's last computed day), the movements flows (docs/metrics.md#mrr-movements),
-- net new MRR their balance (docs/metrics.md#net-new-mrr). A period without a row has no
-- MRR and no movement (docs/metrics.md#which-rows-exist). One row per KPI: a new KPI is one more
-- line of the VALUES list.
WITH bounds AS (
    SELECT date_trunc(:period_type, CAST(:day AS date))::date AS current_start,
           date_trunc(:period_type, date_trunc(:period_type, CAST(:day AS date)) - interval '1 day')::date AS previous_start
),
periods AS (
    SELECT CASE WHEN r.period_start = b.current_start THEN 'current' ELSE 'previous' END AS side, r.*
    FROM revenue_aggregates AS r CROSS JOIN bounds AS b
    WHERE r.tenant_id = :tenant_id
      AND r.period_type = :period_type
      AND r.period_start IN (b.current_start, b.previous_start)
)
SELECT f.kpi, f.unit, coalesce(f.current, 0) AS current, coalesce(f.previous, 0) AS previous,
       b.current_start, b.previous_start
FROM bounds AS b
LEFT JOIN periods AS c ON c.side = 'current'
LEFT JOIN periods AS p ON p.side = 'previous'
CROSS JOIN LATERAL (VALUES
    (1, 'mrr', 'amount', c.mrr, p.mrr),
    (2, 'arr', 'amount', c.arr, p.arr),
    (3, 'new_revenue', 'amount', c.new_revenue, p.new_revenue),
    (4, 'expansion_revenue', 'amount', c.expansion_revenue, p.expansion_revenue),
    (5, 'reactivation_revenue', 'amount', c.reactivation_revenue, p.reactivation_revenue),
    (6, 'contraction_revenue', 'amount', c.contraction_revenue, p.contraction_revenue),
    (7, 'churned_revenue', 'amount', c.churned_revenue, p.churned_revenue),
    (8, 'net_new_mrr', 'amount',
        c.new_revenue + c.reactivation_revenue + c.expansion_revenue - c.contraction_revenue - c.churned_revenue,
        p.new_revenue + p.reactivation_revenue + p.expansion_revenue - p.contraction_revenue - p.churned_revenue),
    (9, 'total_revenue', 'amount', c.total_revenue, p.total_revenue)
) AS f(position, kpi, unit, current, previous)
ORDER BY f.position
