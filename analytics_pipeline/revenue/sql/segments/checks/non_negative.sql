SELECT id, 'negative amount or count'
FROM segment_check_rows
WHERE least(mrr, arr, new_revenue, reactivation_revenue, expansion_revenue, contraction_revenue,
            churned_revenue, transfer_in_revenue, transfer_out_revenue) < 0
   OR least(active_customers, new_customers, reactivated_customers, churned_customers,
            transferred_in_customers, transferred_out_customers) < 0
ORDER BY id
