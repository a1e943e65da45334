-- Keep a copy of the window's malformed events (window_malformed.sql), of any type: none of them
-- is activity, a signup or revenue. Counted per window from this table (docs/metrics.md).
INSERT INTO malformed_events (event_id, tenant_id, event_type, event_data, user_id, "timestamp", problem)
SELECT id, tenant_id, event_type, event_data, user_id, "timestamp", problem
FROM cohort_window_malformed
ON CONFLICT (event_id) DO NOTHING
