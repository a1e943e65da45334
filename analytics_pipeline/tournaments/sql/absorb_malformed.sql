-- Keep a copy of the window's malformed tournament events; they are left out of every metric and
-- counted per window from this table (docs/metrics.md).
INSERT INTO malformed_events (event_id, tenant_id, event_type, event_data, user_id, "timestamp", problem)
SELECT w.id, e.tenant_id, e.event_type, e.event_data, e.user_id, e."timestamp", w.problem
FROM tournament_window_events w
JOIN analytics_events e ON e.id = w.id
WHERE w.problem IS NOT NULL
ON CONFLICT (event_id) DO NOTHING
