-- Write the rows the run computed ({rows}); a rerun or an overlapping run updates them in place
-- (the specification's upsert on (tenant_id, period_type, period_start)).
INSERT INTO revenue_aggregates (
    id, tenant_id, period_start, period_end, period_type, mrr, arr,
    new_revenue, reactivation_revenue, expansion_revenue, contraction_revenue, churned_revenue,
    total_revenue, payment_count, payment_success_count, refund_count, refund_amount,
    active_customers, new_customers, reactivated_customers, churned_customers,
    ttm_cohort_mrr_before, ttm_cohort_mrr, ttm_cohort_retained_mrr, updated_at
)
SELECT
    tenant_id || ':' || period_type || ':' || period_start, tenant_id, period_start, period_end,
    period_type, mrr, mrr * 12,
    new_revenue, reactivation_revenue, expansion_revenue, contraction_revenue, churned_revenue,
    total_revenue, payment_count, payment_success_count, refund_count, refund_amount,
    active_customers, new_customers, reactivated_customers, churned_customers,
    ttm_cohort_mrr_before, ttm_cohort_mrr, ttm_cohort_retained_mrr,
    now() AT TIME ZONE 'UTC'
FROM {rows}
ON CONFLICT (tenant_id, period_type, period_start) DO UPDATE SET
    id = EXCLUDED.id,
    period_end = EXCLUDED.period_end,
    mrr = EXCLUDED.mrr,
    arr = EXCLUDED.arr,
    new_revenue = EXCLUDED.new_revenue,
    reactivation_revenue = EXCLUDED.reactivation_revenue,
    expansion_revenue = EXCLUDED.expansion_revenue,
    contraction_revenue = EXCLUDED.contraction_revenue,
    churned_revenue = EXCLUDED.churned_revenue,
    total_revenue = EXCLUDED.total_revenue,
    payment_count = EXCLUDED.payment_count,
    payment_success_count = EXCLUDED.payment_success_count,
    refund_count = EXCLUDED.refund_count,
    refund_amount = EXCLUDED.refund_amount,
    active_customers = EXCLUDED.active_customers,
    new_customers = EXCLUDED.new_customers,
    reactivated_customers = EXCLUDED.reactivated_customers,
    churned_customers = EXCLUDED.churned_customers,
    ttm_cohort_mrr_before = EXCLUDED.ttm_cohort_mrr_before,
    ttm_cohort_mrr = EXCLUDED.ttm_cohort_mrr,
    ttm_cohort_retained_mrr = EXCLUDED.ttm_cohort_retained_mrr,
    updated_at = EXCLUDED.updated_at
