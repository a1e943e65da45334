-- The day rows of the touched weeks and months: the stored ones outside the window and the
-- window's just computed (segment_day_rows), before the write, so that a value no column can hold
-- keeps its tenant out of the write, days included (docs/metrics.md#periods). Of the computed day
-- rows only those that change a sum or end a span, week or month (`rolls_up`, day_rows.sql).
SELECT tenant_id, dimension, value, period_start, mrr,
       new_revenue, reactivation_revenue, expansion_revenue, contraction_revenue, churned_revenue,
       transfer_in_revenue, transfer_out_revenue,
       active_customers, new_customers, reactivated_customers, churned_customers,
       transferred_in_customers, transferred_out_customers
FROM revenue_segments
WHERE period_type = 'day'
  AND (period_start < :window_start OR period_start >= :window_end)
  AND period_start >= (SELECT min(period_start) FROM ({touched_periods}) AS t WHERE period_type IN ('week', 'month'))
  AND period_start <= (SELECT max(period_end) FROM ({touched_periods}) AS t WHERE period_type IN ('week', 'month'))
UNION ALL
SELECT tenant_id, dimension, value, period_start, mrr,
       new_revenue, reactivation_revenue, expansion_revenue, contraction_revenue, churned_revenue,
       transfer_in_revenue, transfer_out_revenue,
       active_customers, new_customers, reactivated_customers, churned_customers,
       transferred_in_customers, transferred_out_customers
FROM segment_day_rows
WHERE rolls_up
