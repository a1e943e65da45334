-- Active customers at the end minus those before the period equal the period's customer flows
-- (docs/metrics.md#customers).
SELECT id, 'active_customers ' || active_customers || ' - opening ' || opening_active_customers
           || ' <> new + reactivated - churned'
FROM revenue_check_rows
WHERE has_day_rows
  AND active_customers - opening_active_customers <> new_customers + reactivated_customers - churned_customers
ORDER BY id
