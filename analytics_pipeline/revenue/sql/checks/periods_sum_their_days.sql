-- Week, month, quarter and year rows against their stored day rows (docs/metrics.md#periods).
SELECT id, CASE WHEN has_day_rows THEN 'differs from its day rows' ELSE 'no day rows' END
FROM revenue_check_rows
WHERE period_type <> 'day' AND (
    NOT has_day_rows
    OR (mrr, new_revenue, reactivation_revenue, expansion_revenue, contraction_revenue,
        churned_revenue, total_revenue, payment_count, payment_success_count, refund_count, refund_amount,
        active_customers, new_customers, reactivated_customers, churned_customers)
       IS DISTINCT FROM
       (last_mrr, sum_new_revenue, sum_reactivation_revenue, sum_expansion_revenue,
        sum_contraction_revenue, sum_churned_revenue, sum_total_revenue, sum_payment_count,
        sum_payment_success_count, sum_refund_count, sum_refund_amount,
        last_active_customers, sum_new_customers, sum_reactivated_customers, sum_churned_customers)
)
ORDER BY id
