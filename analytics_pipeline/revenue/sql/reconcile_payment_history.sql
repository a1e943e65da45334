-- Reconciliation of payment_history (docs/ingestion.md#reconciliation): per tenant and day, the
-- payment events committed before the state's last absorb ({absorbed}) that are still in
-- analytics_events, against those of them the state holds: in payment_events, or, when the absorb
-- found them malformed, in malformed_events.
SELECT e.tenant_id,
       e."timestamp"::date AS day,
       count(*) AS raw_events,
       count(*) FILTER (WHERE p.event_id IS NOT NULL OR m.event_id IS NOT NULL) AS in_state
FROM analytics_events AS e
LEFT JOIN payment_events AS p ON p.event_id = e.id
LEFT JOIN malformed_events AS m ON m.event_id = e.id
WHERE e.event_type IN ('payment_completed', 'payment_failed', 'payment_refunded')
  AND {absorbed}
GROUP BY 1, 2
HAVING count(*) <> count(*) FILTER (WHERE p.event_id IS NOT NULL OR m.event_id IS NOT NULL)
ORDER BY 1, 2
