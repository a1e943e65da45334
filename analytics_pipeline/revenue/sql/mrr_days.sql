-- Per tenant and day of the window on which any customer's MRR changed: the net change and its
-- movements, from the MRR state (tenant_mrr_days). Definitions: docs/metrics.md#mrr,
-- docs/metrics.md#mrr-movements, docs/metrics.md#mrr-state.
CREATE TEMP TABLE revenue_mrr_days ON COMMIT DROP AS
SELECT
    tenant_id, day,
    new_revenue + reactivation_revenue + expansion_revenue - contraction_revenue - churned_revenue AS net,
    new_revenue, reactivation_revenue, expansion_revenue, contraction_revenue, churned_revenue
FROM tenant_mrr_days
WHERE day >= :window_start
  AND day < :window_end
