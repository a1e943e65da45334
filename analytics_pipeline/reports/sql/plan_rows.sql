-- The revenue_segments rows of the plan dimension a comprehensive report reads
-- (docs/metrics.md#revenue_segments, docs/metrics.md#segment-movements for the transfers of a plan
-- change, docs/metrics.md#segment-customers): every plan's rows of the report's period type for its
-- period and the period before. They are the report's CSV attachment of revenue by plan; the table
-- in the email sums them (plan_table.sql).
SELECT s.period_type, s.period_start, s.period_end, s.value AS plan,
       s.mrr, s.arr, s.new_revenue, s.reactivation_revenue, s.expansion_revenue, s.contraction_revenue,
       s.churned_revenue, s.transfer_in_revenue, s.transfer_out_revenue,
       s.active_customers, s.new_customers, s.reactivated_customers, s.churned_customers,
       s.transferred_in_customers, s.transferred_out_customers
FROM revenue_segments AS s
WHERE s.tenant_id = :tenant_id AND s.period_type = :period_type AND s.dimension = 'plan'
  AND s.period_start BETWEEN :previous_start AND :end
ORDER BY s.period_start, s.mrr DESC, s.value
