-- Each user's valid payment_completed amounts per month among the absorb window's events, as
-- {payment event id: amount} (docs/metrics.md#cohort-state), collected into a table dropped at
-- commit (CREATE TABLE AS may read in parallel).
CREATE TEMP TABLE cohort_window_payments ON COMMIT DROP AS
SELECT e.tenant_id,
       e.user_id,
       date_trunc('month', e."timestamp")::date AS activity_month,
       jsonb_object_agg(e.id, analytics_amount(e.event_data)) AS payment_amounts
FROM analytics_events e
WHERE {committed}
  AND e.event_type = 'payment_completed'
  AND e.user_id <> ''
  AND analytics_event_problem(e.event_type, e.event_data, e.user_id, e."timestamp", e.created_at) IS NULL
GROUP BY 1, 2, 3
