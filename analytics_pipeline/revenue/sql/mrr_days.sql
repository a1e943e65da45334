-- Per tenant and day of the window on which any customer's MRR changed: the net change and its
-- movements, and the net change of active customers and its flows, from the MRR state
-- (tenant_mrr_days). Definitions: docs/metrics.md#mrr, docs/metrics.md#mrr-movements,
-- docs/metrics.md#customers, docs/metrics.md#mrr-state.
CREATE TEMP TABLE revenue_mrr_days ON COMMIT DROP AS
SELECT
    tenant_id, day,
    new_revenue + reactivation_revenue + expansion_revenue - contraction_revenue - churned_revenue AS net,
    new_revenue, reactivation_revenue, expansion_revenue, contraction_revenue, churned_revenue,
    new_customers + reactivated_customers - churned_customers AS net_customers,
    new_customers, reactivated_customers, churned_customers
FROM tenant_mrr_days
WHERE day >= :window_start
  AND day < :window_end
