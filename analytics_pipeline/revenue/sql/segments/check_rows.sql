-- The rows this run touched, each with the value's MRR and active customers at the end of the day
-- before its period from the segment state (docs/metrics.md#segment-state), which the bridges
-- of sql/segments/checks/ start from.
CREATE TEMP TABLE segment_check_rows ON COMMIT DROP AS
SELECT r.*, coalesce(o.mrr, 0) AS opening_mrr, coalesce(o.active_customers, 0) AS opening_active_customers
FROM revenue_segments AS r
JOIN ({touched_periods}) AS t ON t.period_type = r.period_type AND t.period_start = r.period_start
LEFT JOIN LATERAL (
    SELECT s.mrr, s.active_customers FROM tenant_segment_days AS s
    WHERE s.tenant_id = r.tenant_id AND s.dimension = r.dimension AND s.value = r.value
      AND s.day < r.period_start
    ORDER BY s.day DESC
    LIMIT 1
) AS o ON true
-- A tenant held back (a value no column can hold) kept its old rows: the run wrote none.
WHERE r.period_start = ANY (ARRAY(SELECT p.period_start FROM ({touched_periods}) AS p))
  AND r.tenant_id NOT IN (SELECT tenant_id FROM tenants_not_written)
