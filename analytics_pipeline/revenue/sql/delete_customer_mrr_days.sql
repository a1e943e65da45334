-- The changed customers' MRR days from their first changed day on, which
-- insert_customer_mrr_days.sql writes again (docs/metrics.md#mrr-state).
DELETE FROM customer_mrr_days AS m
USING revenue_changed_customers AS c
WHERE m.tenant_id = c.tenant_id
  AND m.user_id = c.user_id
  AND m.day >= c.from_day
