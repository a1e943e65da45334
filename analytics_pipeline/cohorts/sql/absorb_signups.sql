-- Each user's first user_signup in the tenant, and so their cohort (docs/metrics.md#cohort-state),
-- from the window's signups (window_signups.sql). Keeping the earliest signup makes re-reading an
-- event change nothing.
INSERT INTO user_signups AS s (tenant_id, user_id, signed_up_at, cohort_month)
SELECT tenant_id, user_id, signed_up_at, date_trunc('month', signed_up_at)::date
FROM cohort_window_signups
ORDER BY 1, 2
ON CONFLICT (tenant_id, user_id) DO UPDATE SET
    signed_up_at = EXCLUDED.signed_up_at,
    cohort_month = EXCLUDED.cohort_month,
    updated_at = now() AT TIME ZONE 'UTC'
WHERE EXCLUDED.signed_up_at < s.signed_up_at
