-- The KPI block of a revenue report, one row per KPI: the KPIs of the last :period_type row of the
-- report's period and of the period before, as the view revenue_kpis computes them
-- (docs/metrics.md#kpis). With one period per side (the default) these are the KPIs of the
-- report's period and of the one before; over several, the last one's, as MRR is the last day's.
-- Rates and retention are fractions, NULL where their denominator is 0; their change is in
-- percentage points, the change of the others in percent (analytics_kpi_change, migration 0020,
-- which the Dashboard API's /v1/kpis follows too). TTM NRR and GRR exist for months only.
-- The customer counts are figures of the revenue section (revenue_summary.sql), not repeated here.
WITH side_rows AS (
    SELECT CASE WHEN period_start >= :start THEN 'current' ELSE 'previous' END AS side,
           row_number() OVER (PARTITION BY period_start >= :start ORDER BY period_start DESC) AS nth,
           k.*
    FROM revenue_kpis AS k
    WHERE tenant_id = :tenant_id AND period_type = :period_type
      AND period_start BETWEEN :previous_start AND :end
),
sides AS (
    SELECT * FROM side_rows WHERE nth = 1
)
SELECT f.metric, f.unit, f.current, f.previous,
       analytics_kpi_change(f.unit, f.current, f.previous) AS change_pct,
       c.period_start AS current_start, c.period_end AS current_end
FROM (SELECT 1) AS one
LEFT JOIN sides AS c ON c.side = 'current'
LEFT JOIN sides AS p ON p.side = 'previous'
CROSS JOIN LATERAL (VALUES
    (1, 'arpa', 'amount', c.arpa, p.arpa),
    (6, 'logo_churn_rate', 'ratio', c.logo_churn_rate, p.logo_churn_rate),
    (7, 'gross_mrr_churn_rate', 'ratio', c.gross_mrr_churn_rate, p.gross_mrr_churn_rate),
    (8, 'net_mrr_churn_rate', 'ratio', c.net_mrr_churn_rate, p.net_mrr_churn_rate),
    (9, 'grr', 'ratio', c.grr, p.grr),
    (10, 'nrr', 'ratio', c.nrr, p.nrr),
    (11, 'quick_ratio', 'number', c.quick_ratio, p.quick_ratio),
    (12, 'ttm_nrr', 'ratio', c.ttm_nrr, p.ttm_nrr),
    (13, 'ttm_grr', 'ratio', c.ttm_grr, p.ttm_grr)
) AS f(position, metric, unit, current, previous)
WHERE f.metric NOT IN ('ttm_nrr', 'ttm_grr') OR :period_type = 'month'
ORDER BY f.position
