-- Per value: MRR at the end minus the opening MRR equals the movements plus the transfers
-- (docs/metrics.md#segment-movements); the rule is evaluated in check_rows.sql.
SELECT id, 'mrr ' || mrr || ' - opening ' || opening_mrr || ' <> movements + transfers'
FROM segment_check_rows
WHERE mrr_bridge_breaks
ORDER BY id
