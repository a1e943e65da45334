-- The calendar months in which each user had any valid event (docs/metrics.md#cohort-state).
-- Inserted in key order: neighbouring keys land on the same index pages.
INSERT INTO user_activity_months (tenant_id, user_id, activity_month)
SELECT DISTINCT e.tenant_id, e.user_id, date_trunc('month', e."timestamp")::date
FROM analytics_events e
WHERE e.created_at > :since
  AND e.created_at <= :through
  AND e.user_id <> ''
  AND analytics_event_problem(e.event_type, e.event_data, e.user_id) IS NULL
ORDER BY 1, 2, 3
ON CONFLICT DO NOTHING
