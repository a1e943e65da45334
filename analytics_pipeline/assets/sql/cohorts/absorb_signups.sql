-- Each user's first user_signup in the tenant, and so their cohort (docs/metrics.md#cohort-state).
-- Keeping the earliest signup makes re-reading an event change nothing.
INSERT INTO user_signups AS s (tenant_id, user_id, signed_up_at, cohort_month)
SELECT e.tenant_id, e.user_id, min(e."timestamp"), date_trunc('month', min(e."timestamp"))::date
FROM analytics_events e
WHERE e.created_at > :since
  AND e.created_at <= :through
  AND e.event_type = 'user_signup'
  AND analytics_event_problem(e.event_type, e.event_data, e.user_id) IS NULL
GROUP BY e.tenant_id, e.user_id
ON CONFLICT (tenant_id, user_id) DO UPDATE SET
    signed_up_at = EXCLUDED.signed_up_at,
    cohort_month = EXCLUDED.cohort_month,
    updated_at = now() AT TIME ZONE 'UTC'
WHERE EXCLUDED.signed_up_at < s.signed_up_at
