-- The changed customers' segment days from their first changed day on, which
-- insert_customer_segment_days.sql writes again (docs/metrics.md#segment-state).
DELETE FROM customer_segment_days AS m
USING revenue_segment_changed_customers AS c
WHERE m.tenant_id = c.tenant_id
  AND m.user_id = c.user_id
  AND m.day >= c.from_day
