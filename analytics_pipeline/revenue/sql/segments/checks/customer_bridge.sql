-- Per value: active customers at the end minus the opening ones equal the flows plus the
-- transfers (docs/metrics.md#segment-customers).
SELECT id, 'active_customers ' || active_customers || ' - opening ' || opening_active_customers
           || ' <> new + reactivated - churned + transferred in - transferred out'
FROM segment_check_rows
WHERE active_customers - opening_active_customers
      <> new_customers + reactivated_customers - churned_customers
         + transferred_in_customers - transferred_out_customers
ORDER BY id
