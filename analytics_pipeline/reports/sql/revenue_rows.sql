-- The revenue_aggregates rows a report reads (definitions: docs/metrics.md#revenue_aggregates):
-- rows of the report's period type for its period and the period before, and the daily rows of
-- the trend window for the charts. They are also the report's CSV attachment.
SELECT period_type, period_start, period_end,
       mrr, arr, new_revenue, expansion_revenue, contraction_revenue, reactivation_revenue,
       churned_revenue, total_revenue, payment_count, payment_success_count, refund_count,
       refund_amount, active_customers, new_customers, reactivated_customers, churned_customers
FROM revenue_aggregates
WHERE tenant_id = :tenant_id
  AND (   (period_type = :period_type AND period_start BETWEEN :previous_start AND :end)
       OR (period_type = 'day' AND period_start BETWEEN :trend_start AND :end))
ORDER BY period_type, period_start
