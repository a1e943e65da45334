SELECT id, 'negative amount or count'
FROM revenue_check_rows
WHERE least(mrr, arr, new_revenue, reactivation_revenue, expansion_revenue, contraction_revenue,
            churned_revenue, total_revenue, refund_amount,
            ttm_cohort_mrr_before, ttm_cohort_mrr, ttm_cohort_retained_mrr) < 0
   OR least(payment_count, payment_success_count, refund_count,
            active_customers, new_customers, reactivated_customers, churned_customers) < 0
ORDER BY id
