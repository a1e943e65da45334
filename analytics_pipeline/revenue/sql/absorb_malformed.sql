-- Copy the malformed events of the window (revenue_window_events) into malformed_events, which
-- outlives the raw events (docs/events.md#malformed-events). Idempotent.
INSERT INTO malformed_events (event_id, tenant_id, event_type, event_data, user_id, "timestamp", problem)
SELECT id, tenant_id, event_type, event_data, user_id, "timestamp", problem
FROM revenue_window_events
WHERE problem IS NOT NULL
ON CONFLICT (event_id) DO NOTHING
