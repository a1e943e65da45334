-- MRR at the end minus the opening MRR equals the period's movements (docs/metrics.md#mrr-movements).
SELECT id, 'mrr ' || mrr || ' - opening ' || opening_mrr || ' <> movements'
FROM revenue_check_rows
WHERE has_day_rows
  AND mrr - opening_mrr <> new_revenue + reactivation_revenue + expansion_revenue
                           - contraction_revenue - churned_revenue
ORDER BY id
