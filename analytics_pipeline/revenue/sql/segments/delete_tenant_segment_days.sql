-- The tenant segment days of the changed customers' tenants from the first changed day of any of
-- their customers on, which insert_tenant_segment_days.sql writes again
-- (docs/metrics.md#segment-state).
DELETE FROM tenant_segment_days AS t
USING (
    SELECT tenant_id, min(from_day) AS from_day FROM revenue_segment_changed_customers GROUP BY tenant_id
) AS c
WHERE t.tenant_id = c.tenant_id
  AND t.day >= c.from_day
