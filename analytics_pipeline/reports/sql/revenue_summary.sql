-- Key revenue figures of the report's period against the period before, one row per figure.
-- Flows (movements, revenue, payments, refunds, customer flows) add up over the period's rows;
-- MRR, ARR and active customers are balances, taken from the period's last row
-- (docs/metrics.md#revenue_aggregates, docs/metrics.md#customers).
WITH totals AS (
    SELECT CASE WHEN period_start >= :start THEN 'current' ELSE 'previous' END AS side,
           count(*) AS row_count,
           (array_agg(mrr ORDER BY period_start DESC))[1] AS mrr,
           (array_agg(arr ORDER BY period_start DESC))[1] AS arr,
           sum(new_revenue) AS new_revenue,
           sum(expansion_revenue) AS expansion_revenue,
           sum(contraction_revenue) AS contraction_revenue,
           sum(reactivation_revenue) AS reactivation_revenue,
           sum(churned_revenue) AS churned_revenue,
           sum(total_revenue) AS total_revenue,
           sum(payment_count) AS payment_count,
           sum(payment_success_count) AS payment_success_count,
           sum(refund_count) AS refund_count,
           sum(refund_amount) AS refund_amount,
           (array_agg(active_customers ORDER BY period_start DESC))[1] AS active_customers,
           sum(new_customers) AS new_customers,
           sum(reactivated_customers) AS reactivated_customers,
           sum(churned_customers) AS churned_customers
    FROM revenue_aggregates
    WHERE tenant_id = :tenant_id AND period_type = :period_type
      AND period_start BETWEEN :previous_start AND :end
    GROUP BY 1
)
SELECT f.metric, f.unit, f.current, f.previous,
       analytics_change_pct(f.current, f.previous) AS change_pct,
       coalesce(c.row_count, 0) AS current_rows
FROM (SELECT 1) AS one
LEFT JOIN totals AS c ON c.side = 'current'
LEFT JOIN totals AS p ON p.side = 'previous'
CROSS JOIN LATERAL (VALUES
    (1, 'mrr', 'amount', c.mrr, p.mrr),
    (2, 'arr', 'amount', c.arr, p.arr),
    (3, 'new_revenue', 'amount', c.new_revenue, p.new_revenue),
    (4, 'expansion_revenue', 'amount', c.expansion_revenue, p.expansion_revenue),
    (5, 'reactivation_revenue', 'amount', c.reactivation_revenue, p.reactivation_revenue),
    (6, 'contraction_revenue', 'amount', c.contraction_revenue, p.contraction_revenue),
    (7, 'churned_revenue', 'amount', c.churned_revenue, p.churned_revenue),
    (8, 'total_revenue', 'amount', c.total_revenue, p.total_revenue),
    (9, 'payment_count', 'count', c.payment_count, p.payment_count),
    (10, 'payment_success_count', 'count', c.payment_success_count, p.payment_success_count),
    (11, 'refund_count', 'count', c.refund_count, p.refund_count),
    (12, 'refund_amount', 'amount', c.refund_amount, p.refund_amount),
    (13, 'active_customers', 'count', c.active_customers, p.active_customers),
    (14, 'new_customers', 'count', c.new_customers, p.new_customers),
    (15, 'reactivated_customers', 'count', c.reactivated_customers, p.reactivated_customers),
    (16, 'churned_customers', 'count', c.churned_customers, p.churned_customers)
) AS f(position, metric, unit, current, previous)
ORDER BY f.position
