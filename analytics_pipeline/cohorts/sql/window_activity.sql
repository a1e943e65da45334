-- The calendar months in which each user had any valid event among the absorb window's events
-- (docs/metrics.md#cohort-state), collected into a table dropped at commit: as CREATE TABLE AS the
-- read may run in parallel, which INSERT ... SELECT never does.
CREATE TEMP TABLE cohort_window_activity ON COMMIT DROP AS
SELECT DISTINCT e.tenant_id, e.user_id, date_trunc('month', e."timestamp")::date AS activity_month
FROM analytics_events e
WHERE {committed}
  AND e.user_id <> ''
  AND analytics_event_problem(e.event_type, e.event_data, e.user_id, e."timestamp", e.created_at) IS NULL
