-- Every column of revenue_segments for one tenant, period type and dimension, for the periods that
-- overlap [:date_from, :date_to], each period's values by MRR, largest first
-- (docs/metrics.md#revenue_segments, docs/metrics.md#segment-movements for the transfers,
-- docs/metrics.md#segment-customers, docs/metrics.md#periods).
SELECT id, tenant_id, period_type, period_start, period_end, dimension, value, mrr, arr,
       new_revenue, reactivation_revenue, expansion_revenue, contraction_revenue, churned_revenue,
       transfer_in_revenue, transfer_out_revenue,
       active_customers, new_customers, reactivated_customers, churned_customers,
       transferred_in_customers, transferred_out_customers, updated_at
FROM revenue_segments
WHERE tenant_id = :tenant_id
  AND period_type = :period_type
  AND dimension = :segment
  AND period_start <= :date_to
  AND period_end >= :date_from
ORDER BY period_start, mrr DESC, value
