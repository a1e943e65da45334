-- The week, month, quarter and year rows that contain a day of the window, recomputed from the
-- stored day rows (docs/metrics.md#periods): flows are the sums of the period's days; mrr is the
-- value of its last computed day.
CREATE TEMP TABLE revenue_period_rows ON COMMIT DROP AS
WITH touched AS (
    SELECT period_type, period_start, period_end
    FROM ({touched_periods}) AS t
    WHERE period_type <> 'day'
),
computed AS (
    SELECT
        r.tenant_id,
        t.period_type,
        t.period_start,
        t.period_end,
        (array_agg(r.mrr ORDER BY r.period_start DESC))[1] AS mrr,
        sum(r.new_revenue) AS new_revenue,
        sum(r.reactivation_revenue) AS reactivation_revenue,
        sum(r.expansion_revenue) AS expansion_revenue,
        sum(r.contraction_revenue) AS contraction_revenue,
        sum(r.churned_revenue) AS churned_revenue,
        sum(r.total_revenue) AS total_revenue,
        sum(r.payment_count) AS payment_count,
        sum(r.payment_success_count) AS payment_success_count,
        sum(r.refund_count) AS refund_count,
        sum(r.refund_amount) AS refund_amount
    FROM touched AS t
    JOIN revenue_aggregates AS r
      ON r.period_type = 'day' AND r.period_start BETWEEN t.period_start AND t.period_end
    GROUP BY r.tenant_id, t.period_type, t.period_start, t.period_end
)
SELECT * FROM computed
