-- The absorb window's malformed events, of any type (docs/events.md), collected into a table
-- dropped at commit (CREATE TABLE AS may read in parallel).
CREATE TEMP TABLE cohort_window_malformed ON COMMIT DROP AS
SELECT e.id, e.tenant_id, e.event_type, e.event_data, e.user_id, e."timestamp",
       analytics_event_problem(e.event_type, e.event_data, e.user_id, e."timestamp", e.created_at) AS problem
FROM analytics_events e
WHERE {committed}
  AND analytics_event_problem(e.event_type, e.event_data, e.user_id, e."timestamp", e.created_at) IS NOT NULL
