-- Every column of revenue_aggregates for one tenant and period type, for the periods that overlap
-- [:date_from, :date_to] (docs/metrics.md#revenue_aggregates, docs/metrics.md#customers,
-- docs/metrics.md#ttm-nrr, docs/metrics.md#periods).
SELECT id, tenant_id, period_type, period_start, period_end, mrr, arr, new_revenue,
       reactivation_revenue, expansion_revenue, contraction_revenue, churned_revenue,
       total_revenue, payment_count, payment_success_count, refund_count, refund_amount,
       active_customers, new_customers, reactivated_customers, churned_customers,
       ttm_cohort_mrr_before, ttm_cohort_mrr, ttm_cohort_retained_mrr, updated_at
FROM revenue_aggregates
WHERE tenant_id = :tenant_id
  AND period_type = :period_type
  AND period_start <= :date_to
  AND period_end >= :date_from
ORDER BY period_start
