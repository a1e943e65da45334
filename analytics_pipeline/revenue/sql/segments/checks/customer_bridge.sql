-- Per value: active customers at the end minus the opening ones equal the flows plus the
-- transfers (docs/metrics.md#segment-customers); the rule is evaluated in check_rows.sql.
SELECT id, 'active_customers ' || active_customers || ' - opening ' || opening_active_customers
           || ' <> new + reactivated - churned + transferred in - transferred out'
FROM segment_check_rows
WHERE customer_bridge_breaks
ORDER BY id
