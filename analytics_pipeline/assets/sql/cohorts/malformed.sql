-- Malformed events (docs/events.md) that happened in the window, per tenant, type and reason:
-- any event may be a user's activity, so all types count. One index range scan per tenant
-- (analytics_events_tenant_id_timestamp_idx).
SELECT o.id AS tenant_id, m.event_type, m.problem, m.events
FROM organizations o
CROSS JOIN LATERAL (
    SELECT e.event_type,
           analytics_event_problem(e.event_type, e.event_data, e.user_id) AS problem,
           count(*) AS events
    FROM analytics_events e
    WHERE e.tenant_id = o.id
      AND e."timestamp" >= :window_start
      AND e."timestamp" < :window_end
      AND analytics_event_problem(e.event_type, e.event_data, e.user_id) IS NOT NULL
    GROUP BY 1, 2
) m
ORDER BY 1, 2, 3
