-- Every check's violations among the rows this run touched, one row per violating aggregate row.
-- The MRR bridge (docs/metrics.md#mrr-movements) takes the opening MRR from the subscription
-- history, at the end of the day before the period's first stored day.
WITH touched AS (
    SELECT period_type, period_start FROM ({touched_periods}) AS t
),
rows AS (
    SELECT r.*
    FROM revenue_aggregates AS r
    JOIN touched AS t USING (period_type, period_start)
),
first_days AS (
    SELECT r.tenant_id, r.period_type, r.period_start, min(d.period_start) AS first_day,
           count(d.*) AS day_rows,
           sum(d.new_revenue) AS new_revenue, sum(d.reactivation_revenue) AS reactivation_revenue,
           sum(d.expansion_revenue) AS expansion_revenue, sum(d.contraction_revenue) AS contraction_revenue,
           sum(d.churned_revenue) AS churned_revenue, sum(d.total_revenue) AS total_revenue,
           sum(d.payment_count) AS payment_count, sum(d.payment_success_count) AS payment_success_count,
           sum(d.refund_count) AS refund_count, sum(d.refund_amount) AS refund_amount,
           (array_agg(d.mrr ORDER BY d.period_start DESC))[1] AS last_mrr
    FROM rows AS r
    JOIN revenue_aggregates AS d
      ON d.tenant_id = r.tenant_id AND d.period_type = 'day'
     AND d.period_start BETWEEN r.period_start AND r.period_end
    GROUP BY r.tenant_id, r.period_type, r.period_start
),
opening AS (
    SELECT f.*, coalesce((
        SELECT sum(m.net) FROM revenue_mrr_days AS m
        WHERE m.tenant_id = f.tenant_id AND m.day < f.first_day
    ), 0) AS opening_mrr
    FROM first_days AS f
)
SELECT 'mrr_bridge' AS check_name, r.tenant_id, r.period_type, r.period_start
FROM rows AS r JOIN opening AS o USING (tenant_id, period_type, period_start)
WHERE r.mrr - o.opening_mrr <> r.new_revenue + r.reactivation_revenue + r.expansion_revenue
                              - r.contraction_revenue - r.churned_revenue
UNION ALL
SELECT 'non_negative', tenant_id, period_type, period_start FROM rows
WHERE least(mrr, arr, new_revenue, reactivation_revenue, expansion_revenue, contraction_revenue,
            churned_revenue, total_revenue, refund_amount) < 0
   OR least(payment_count, payment_success_count, refund_count) < 0
UNION ALL
SELECT 'payment_success_within_attempts', tenant_id, period_type, period_start FROM rows
WHERE payment_success_count > payment_count
UNION ALL
SELECT 'arr_is_twelve_times_mrr', tenant_id, period_type, period_start FROM rows
WHERE arr <> mrr * 12
UNION ALL
SELECT 'periods_sum_their_days', r.tenant_id, r.period_type, r.period_start
FROM rows AS r LEFT JOIN opening AS o USING (tenant_id, period_type, period_start)
WHERE r.period_type <> 'day' AND (
    o.tenant_id IS NULL
    OR (r.mrr, r.new_revenue, r.reactivation_revenue, r.expansion_revenue, r.contraction_revenue,
        r.churned_revenue, r.total_revenue, r.payment_count, r.payment_success_count,
        r.refund_count, r.refund_amount)
       IS DISTINCT FROM
       (o.last_mrr, o.new_revenue, o.reactivation_revenue, o.expansion_revenue, o.contraction_revenue,
        o.churned_revenue, o.total_revenue, o.payment_count::int, o.payment_success_count::int,
        o.refund_count::int, o.refund_amount)
)
