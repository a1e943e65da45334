-- The month rows of the touched quarters and years: the stored ones of the months the window does
-- not touch and those just computed (segment_period_rows). A quarter or a year is summed from its
-- months, which are their days' sums already: a run reads a few weeks of day rows, not a year's.
SELECT tenant_id, dimension, value, period_start, mrr,
       new_revenue, reactivation_revenue, expansion_revenue, contraction_revenue, churned_revenue,
       transfer_in_revenue, transfer_out_revenue,
       active_customers, new_customers, reactivated_customers, churned_customers,
       transferred_in_customers, transferred_out_customers
FROM revenue_segments
WHERE period_type = 'month'
  AND period_start NOT IN (SELECT period_start FROM ({touched_periods}) AS t WHERE period_type = 'month')
  AND period_start >= (SELECT min(period_start) FROM ({touched_periods}) AS t WHERE period_type IN ('quarter', 'year'))
  AND period_start <= (SELECT max(period_end) FROM ({touched_periods}) AS t WHERE period_type IN ('quarter', 'year'))
UNION ALL
SELECT tenant_id, dimension, value, period_start, mrr,
       new_revenue, reactivation_revenue, expansion_revenue, contraction_revenue, churned_revenue,
       transfer_in_revenue, transfer_out_revenue,
       active_customers, new_customers, reactivated_customers, churned_customers,
       transferred_in_customers, transferred_out_customers
FROM segment_period_rows
WHERE period_type = 'month'
