-- Write the rows the run computed ({rows}); a rerun or an overlapping run updates them in place
-- (docs/metrics.md#revenue_segments). A row whose values did not change is left as it is: an
-- hourly run recomputes every value's running week, month, quarter and year, and most of them
-- had no movement since the last run.
INSERT INTO revenue_segments (
    id, tenant_id, period_start, period_end, period_type, dimension, value, mrr, arr,
    new_revenue, reactivation_revenue, expansion_revenue, contraction_revenue, churned_revenue,
    transfer_in_revenue, transfer_out_revenue,
    active_customers, new_customers, reactivated_customers, churned_customers,
    transferred_in_customers, transferred_out_customers, updated_at
)
SELECT
    tenant_id || ':' || period_type || ':' || period_start || ':' || dimension || ':' || value,
    tenant_id, period_start, period_end, period_type, dimension, value, mrr, mrr * 12,
    new_revenue, reactivation_revenue, expansion_revenue, contraction_revenue, churned_revenue,
    transfer_in_revenue, transfer_out_revenue,
    active_customers, new_customers, reactivated_customers, churned_customers,
    transferred_in_customers, transferred_out_customers,
    now() AT TIME ZONE 'UTC'
FROM {rows}
ON CONFLICT (tenant_id, period_type, dimension, period_start, value) DO UPDATE SET
    id = EXCLUDED.id,
    period_end = EXCLUDED.period_end,
    mrr = EXCLUDED.mrr,
    arr = EXCLUDED.arr,
    new_revenue = EXCLUDED.new_revenue,
    reactivation_revenue = EXCLUDED.reactivation_revenue,
    expansion_revenue = EXCLUDED.expansion_revenue,
    contraction_revenue = EXCLUDED.contraction_revenue,
    churned_revenue = EXCLUDED.churned_revenue,
    transfer_in_revenue = EXCLUDED.transfer_in_revenue,
    transfer_out_revenue = EXCLUDED.transfer_out_revenue,
    active_customers = EXCLUDED.active_customers,
    new_customers = EXCLUDED.new_customers,
    reactivated_customers = EXCLUDED.reactivated_customers,
    churned_customers = EXCLUDED.churned_customers,
    transferred_in_customers = EXCLUDED.transferred_in_customers,
    transferred_out_customers = EXCLUDED.transferred_out_customers,
    updated_at = EXCLUDED.updated_at
WHERE (revenue_segments.period_end, revenue_segments.mrr, revenue_segments.new_revenue,
       revenue_segments.reactivation_revenue, revenue_segments.expansion_revenue,
       revenue_segments.contraction_revenue, revenue_segments.churned_revenue,
       revenue_segments.transfer_in_revenue, revenue_segments.transfer_out_revenue,
       revenue_segments.active_customers, revenue_segments.new_customers,
       revenue_segments.reactivated_customers, revenue_segments.churned_customers,
       revenue_segments.transferred_in_customers, revenue_segments.transferred_out_customers)
      IS DISTINCT FROM
      (EXCLUDED.period_end, EXCLUDED.mrr, EXCLUDED.new_revenue,
       EXCLUDED.reactivation_revenue, EXCLUDED.expansion_revenue,
       EXCLUDED.contraction_revenue, EXCLUDED.churned_revenue,
       EXCLUDED.transfer_in_revenue, EXCLUDED.transfer_out_revenue,
       EXCLUDED.active_customers, EXCLUDED.new_customers, EXCLUDED.reactivated_customers,
       EXCLUDED.churned_customers, EXCLUDED.transferred_in_customers, EXCLUDED.transferred_out_customers)
