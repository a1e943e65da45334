-- The MRR bridge of the days [:date_from, :date_to] (docs/metrics.md#mrr-movements): opening MRR
-- at the end of the day before the range, the movements of its days, closing MRR at the end of
-- its last day. A day without a row has no MRR (docs/metrics.md#which-rows-exist).
WITH days AS (
    SELECT period_start, mrr, new_revenue, reactivation_revenue, expansion_revenue,
           contraction_revenue, churned_revenue
    FROM revenue_aggregates
    WHERE tenant_id = :tenant_id
      AND period_type = 'day'
      AND period_start BETWEEN CAST(:date_from AS date) - 1 AND CAST(:date_to AS date)
),
bridge AS (
    SELECT coalesce(max(mrr) FILTER (WHERE period_start = CAST(:date_from AS date) - 1), 0) AS opening_mrr,
           coalesce(sum(new_revenue) FILTER (WHERE period_start >= :date_from), 0) AS new_revenue,
           coalesce(sum(reactivation_revenue) FILTER (WHERE period_start >= :date_from), 0) AS reactivation_revenue,
           coalesce(sum(expansion_revenue) FILTER (WHERE period_start >= :date_from), 0) AS expansion_revenue,
           coalesce(sum(contraction_revenue) FILTER (WHERE period_start >= :date_from), 0) AS contraction_revenue,
           coalesce(sum(churned_revenue) FILTER (WHERE period_start >= :date_from), 0) AS churned_revenue,
           coalesce(max(mrr) FILTER (WHERE period_start = :date_to), 0) AS closing_mrr
    FROM days
)
SELECT *,
       closing_mrr - opening_mrr = new_revenue + reactivation_revenue + expansion_revenue
           - contraction_revenue - churned_revenue AS identity_holds
FROM bridge
