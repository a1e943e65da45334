-- Keep a copy of the malformed payment or subscription events created in (:since, :through]:
-- they are left out of every metric and counted per window from malformed_events, which outlives
-- the raw events (docs/events.md#malformed-events). {event_types} is the state's event types.
INSERT INTO malformed_events (event_id, tenant_id, event_type, event_data, user_id, "timestamp", problem)
SELECT e.id, e.tenant_id, e.event_type, e.event_data, e.user_id, e."timestamp",
       analytics_event_problem(e.event_type, e.event_data, e.user_id)
FROM analytics_events AS e
WHERE e.event_type IN ({event_types})
  AND e.created_at > :since
  AND e.created_at <= :through
  AND analytics_event_problem(e.event_type, e.event_data, e.user_id) IS NOT NULL
ON CONFLICT (event_id) DO NOTHING
