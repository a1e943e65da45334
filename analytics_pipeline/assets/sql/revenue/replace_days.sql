-- Write the window's day rows: upsert every computed row, and remove stored day rows of the
-- window that no longer qualify.
WITH removed AS (
    DELETE FROM revenue_aggregates AS r
    WHERE r.period_type = 'day'
      AND r.period_start >= :window_start
      AND r.period_start < :window_end
      AND NOT EXISTS (
          SELECT 1 FROM revenue_day_rows AS n WHERE n.tenant_id = r.tenant_id AND n.day = r.period_start
      )
)
INSERT INTO revenue_aggregates (
    id, tenant_id, period_start, period_end, period_type, mrr, arr,
    new_revenue, reactivation_revenue, expansion_revenue, contraction_revenue, churned_revenue,
    total_revenue, payment_count, payment_success_count, refund_count, refund_amount, updated_at
)
SELECT
    tenant_id || ':day:' || day, tenant_id, day, day, 'day', mrr, mrr * 12,
    new_revenue, reactivation_revenue, expansion_revenue, contraction_revenue, churned_revenue,
    total_revenue, payment_count, payment_success_count, refund_count, refund_amount,
    now() AT TIME ZONE 'UTC'
FROM revenue_day_rows
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
