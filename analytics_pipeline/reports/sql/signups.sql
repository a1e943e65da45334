-- New users (valid user_signup events) in the period and the period before, with the change.
-- Counted from the raw events because user_cohorts counts signups per calendar month only.
WITH counts AS (
    SELECT count(DISTINCT e.user_id) FILTER (WHERE e."timestamp" >= :start_at) AS current,
           count(DISTINCT e.user_id) FILTER (WHERE e."timestamp" < :start_at) AS previous
    FROM analytics_events AS e
    WHERE e.tenant_id = :tenant_id
      AND e.event_type = 'user_signup'
      AND e."timestamp" >= :previous_start_at AND e."timestamp" < :end_at
      AND analytics_event_problem(e.event_type, e.event_data, e.user_id, e."timestamp", e.created_at) IS NULL
)
SELECT 'signups' AS metric, 'count' AS unit, current, previous,
       analytics_change_pct(current, previous) AS change_pct
FROM counts
