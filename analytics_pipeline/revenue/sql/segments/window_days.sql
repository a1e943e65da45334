-- Per tenant, dimension, value and day of the window with a segment state row: the net change of
-- MRR and of active customers, their movements, transfers and flows (docs/metrics.md#segments,
-- docs/metrics.md#segment-state).
CREATE TEMP TABLE segment_window_days ON COMMIT DROP AS
SELECT
    tenant_id, dimension, value, day,
    new_revenue + reactivation_revenue + expansion_revenue - contraction_revenue - churned_revenue
        + transfer_in_revenue - transfer_out_revenue AS net,
    new_revenue, reactivation_revenue, expansion_revenue, contraction_revenue, churned_revenue,
    transfer_in_revenue, transfer_out_revenue,
    new_customers + reactivated_customers - churned_customers + transferred_in_customers
        - transferred_out_customers AS net_customers,
    new_customers, reactivated_customers, churned_customers, transferred_in_customers, transferred_out_customers
FROM tenant_segment_days
WHERE day >= :window_start
  AND day < :window_end
