-- The rows this run touched, each beside what its checks compare it with (sql/checks/): the sums
-- of its stored day rows, its last day's mrr and active customers, and the opening MRR and active
-- customers from the MRR state at the end of the day before its first stored day
-- (docs/metrics.md#mrr-movements, docs/metrics.md#customers, docs/metrics.md#mrr-state).
CREATE TEMP TABLE revenue_check_rows ON COMMIT DROP AS
WITH touched AS (
    SELECT period_type, period_start FROM ({touched_periods}) AS t
),
rows AS (
    SELECT r.*
    FROM revenue_aggregates AS r
    JOIN touched AS t USING (period_type, period_start)
    -- A tenant held back (a value no column can hold) kept its old rows: the run wrote none.
    WHERE r.tenant_id NOT IN (SELECT tenant_id FROM tenants_not_written)
),
first_days AS (
    SELECT r.tenant_id, r.period_type, r.period_start, min(d.period_start) AS first_day,
           count(d.*) AS day_rows,
           sum(d.new_revenue) AS new_revenue, sum(d.reactivation_revenue) AS reactivation_revenue,
           sum(d.expansion_revenue) AS expansion_revenue, sum(d.contraction_revenue) AS contraction_revenue,
           sum(d.churned_revenue) AS churned_revenue, sum(d.total_revenue) AS total_revenue,
           sum(d.payment_count) AS payment_count, sum(d.payment_success_count) AS payment_success_count,
           sum(d.refund_count) AS refund_count, sum(d.refund_amount) AS refund_amount,
           (array_agg(d.mrr ORDER BY d.period_start DESC))[1] AS last_mrr,
           sum(d.new_customers) AS new_customers, sum(d.reactivated_customers) AS reactivated_customers,
           sum(d.churned_customers) AS churned_customers,
           (array_agg(d.active_customers ORDER BY d.period_start DESC))[1] AS last_active_customers
    FROM rows AS r
    JOIN revenue_aggregates AS d
      ON d.tenant_id = r.tenant_id AND d.period_type = 'day'
     AND d.period_start BETWEEN r.period_start AND r.period_end
    GROUP BY r.tenant_id, r.period_type, r.period_start
),
opening AS (
    SELECT f.*, coalesce(before.mrr, 0) AS opening_mrr,
           coalesce(before.active_customers, 0) AS opening_active_customers
    FROM first_days AS f
    LEFT JOIN LATERAL (
        SELECT m.mrr, m.active_customers FROM tenant_mrr_days AS m
        WHERE m.tenant_id = f.tenant_id AND m.day < f.first_day
        ORDER BY m.day DESC
        LIMIT 1
    ) AS before ON true
)
SELECT r.*, o.tenant_id IS NOT NULL AS has_day_rows, o.opening_mrr, o.opening_active_customers,
       o.last_mrr, o.new_revenue AS sum_new_revenue, o.reactivation_revenue AS sum_reactivation_revenue,
       o.expansion_revenue AS sum_expansion_revenue, o.contraction_revenue AS sum_contraction_revenue,
       o.churned_revenue AS sum_churned_revenue, o.total_revenue AS sum_total_revenue,
       o.payment_count::int AS sum_payment_count, o.payment_success_count::int AS sum_payment_success_count,
       o.refund_count::int AS sum_refund_count, o.refund_amount AS sum_refund_amount,
       o.last_active_customers, o.new_customers::int AS sum_new_customers,
       o.reactivated_customers::int AS sum_reactivated_customers,
       o.churned_customers::int AS sum_churned_customers
FROM rows AS r
LEFT JOIN opening AS o USING (tenant_id, period_type, period_start)
