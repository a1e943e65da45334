-- Keep a copy of the window's malformed events, of any type: none of them is activity, a signup or
-- revenue. Counted per window from this table (docs/metrics.md).
INSERT INTO malformed_events (event_id, tenant_id, event_type, event_data, user_id, "timestamp", problem)
SELECT e.id, e.tenant_id, e.event_type, e.event_data, e.user_id, e."timestamp",
       analytics_event_problem(e.event_type, e.event_data, e.user_id)
FROM analytics_events e
WHERE e.created_at > :since
  AND e.created_at <= :through
  AND analytics_event_problem(e.event_type, e.event_data, e.user_id) IS NOT NULL
ON CONFLICT (event_id) DO NOTHING
