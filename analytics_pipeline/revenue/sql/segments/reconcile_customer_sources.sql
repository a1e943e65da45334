-- Reconciliation of customer_sources (docs/ingestion.md#reconciliation): per tenant and day, the
-- user_signup events committed before the state's last absorb ({absorbed}) that are still in
-- analytics_events, against those the state holds: their customer in customer_sources, signed up
-- at or before the event (the state keeps each customer's first signup,
-- docs/metrics.md#segment-state), or, when the absorb found them malformed, the event in
-- malformed_events.
SELECT e.tenant_id,
       e."timestamp"::date AS day,
       count(*) AS raw_events,
       count(*) FILTER (WHERE s.user_id IS NOT NULL OR m.event_id IS NOT NULL) AS in_state
FROM analytics_events AS e
LEFT JOIN customer_sources AS s
       ON s.tenant_id = e.tenant_id AND s.user_id = e.user_id AND s.signed_up_at <= e."timestamp"
LEFT JOIN malformed_events AS m ON m.event_id = e.id
WHERE e.event_type = 'user_signup'
  AND {absorbed}
GROUP BY 1, 2
HAVING count(*) <> count(*) FILTER (WHERE s.user_id IS NOT NULL OR m.event_id IS NOT NULL)
ORDER BY 1, 2
