-- The revenue_aggregates rows a report reads (definitions: docs/metrics.md#revenue_aggregates,
-- docs/metrics.md#customers), with each row's KPIs from the view revenue_kpis
-- (docs/metrics.md#kpis): rows of the report's period type for its period and the period before,
-- and the daily rows of the trend window for the charts. They are also the report's CSV attachment.
SELECT r.period_type, r.period_start, r.period_end,
       r.mrr, r.arr, r.new_revenue, r.expansion_revenue, r.contraction_revenue, r.reactivation_revenue,
       r.churned_revenue, r.total_revenue, r.payment_count, r.payment_success_count, r.refund_count,
       r.refund_amount, r.active_customers, r.new_customers, r.reactivated_customers, r.churned_customers,
       k.opening_mrr, k.opening_customers, k.arpa, k.logo_churn_rate, k.gross_mrr_churn_rate,
       k.net_mrr_churn_rate, k.grr, k.nrr, k.quick_ratio, k.ttm_nrr, k.ttm_grr
FROM revenue_aggregates AS r
JOIN revenue_kpis AS k USING (tenant_id, period_type, period_start)
WHERE r.tenant_id = :tenant_id
  AND (   (r.period_type = :period_type AND r.period_start BETWEEN :previous_start AND :end)
       OR (r.period_type = 'day' AND r.period_start BETWEEN :trend_start AND :end))
ORDER BY r.period_type, r.period_start
