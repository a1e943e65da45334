-- Each user's earliest valid user_signup among the absorb window's events, collected into a table
-- dropped at commit: as CREATE TABLE AS the read may run in parallel, which INSERT ... SELECT
-- never does (docs/metrics.md#cohort-state).
CREATE TEMP TABLE cohort_window_signups ON COMMIT DROP AS
SELECT e.tenant_id, e.user_id, min(e."timestamp") AS signed_up_at
FROM analytics_events e
WHERE {committed}
  AND e.event_type = 'user_signup'
  AND analytics_event_problem(e.event_type, e.event_data, e.user_id, e."timestamp", e.created_at) IS NULL
GROUP BY e.tenant_id, e.user_id
