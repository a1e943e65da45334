-- Recompute the week, month, quarter and year rows that contain a day of the window, from the
-- stored day rows (docs/metrics.md#periods): flows are the sums of the period's days; mrr is the
-- value of its last computed day. Periods left without day rows are removed.
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
),
removed AS (
    DELETE FROM revenue_aggregates AS r
    USING touched AS t
    WHERE r.period_type = t.period_type
      AND r.period_start = t.period_start
      AND NOT EXISTS (
          SELECT 1 FROM computed AS c
          WHERE c.tenant_id = r.tenant_id AND c.period_type = r.period_type AND c.period_start = r.period_start
      )
)
INSERT INTO revenue_aggregates (
    id, tenant_id, period_start, period_end, period_type, mrr, arr,
    new_revenue, reactivation_revenue, expansion_revenue, contraction_revenue, churned_revenue,
    total_revenue, payment_count, payment_success_count, refund_count, refund_amount, updated_at
)
SELECT
    tenant_id || ':' || period_type || ':' || period_start, tenant_id, period_start, period_end,
    period_type, mrr, mrr * 12,
    new_revenue, reactivation_revenue, expansion_revenue, contraction_revenue, churned_revenue,
    total_revenue, payment_count, payment_success_count, refund_count, refund_amount,
    now() AT TIME ZONE 'UTC'
FROM computed
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
    updated_at = EXCLUDED.updated_at
