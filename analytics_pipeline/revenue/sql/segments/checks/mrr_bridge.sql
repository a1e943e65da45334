-- Per value: MRR at the end minus the opening MRR equals the movements plus the transfers
-- (docs/metrics.md#segment-movements).
SELECT id, 'mrr ' || mrr || ' - opening ' || opening_mrr || ' <> movements + transfers'
FROM segment_check_rows
WHERE mrr - opening_mrr <> new_revenue + reactivation_revenue + expansion_revenue - contraction_revenue
                           - churned_revenue + transfer_in_revenue - transfer_out_revenue
ORDER BY id
