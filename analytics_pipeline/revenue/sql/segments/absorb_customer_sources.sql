-- Keep each customer's first user_signup and its source (revenue_window_signups.sql), so that
-- reading an event twice changes nothing (docs/metrics.md#segment-state).
INSERT INTO customer_sources AS s (tenant_id, user_id, source, signed_up_at, event_id)
SELECT tenant_id, user_id, source, signed_up_at, event_id
FROM revenue_window_signups
ORDER BY 1, 2
ON CONFLICT (tenant_id, user_id) DO UPDATE SET
    source = EXCLUDED.source,
    signed_up_at = EXCLUDED.signed_up_at,
    event_id = EXCLUDED.event_id
WHERE (EXCLUDED.signed_up_at, EXCLUDED.event_id) < (s.signed_up_at, s.event_id)
