-- Reconciliation of subscription_history (docs/ingestion.md#reconciliation): per tenant and day,
-- the subscription events committed before the state's last absorb ({absorbed}) that are still in
-- analytics_events, against those of them the state holds: in subscription_events, or, when the
-- absorb found them malformed, in malformed_events. A day where the two differ lost an event.
SELECT e.tenant_id,
       e."timestamp"::date AS day,
       count(*) AS raw_events,
       count(*) FILTER (WHERE s.event_id IS NOT NULL OR m.event_id IS NOT NULL) AS in_state
FROM analytics_events AS e
LEFT JOIN subscription_events AS s ON s.event_id = e.id
LEFT JOIN malformed_events AS m ON m.event_id = e.id
WHERE e.event_type IN ('subscription_started', 'subscription_changed', 'subscription_cancelled')
  AND {absorbed}
GROUP BY 1, 2
HAVING count(*) <> count(*) FILTER (WHERE s.event_id IS NOT NULL OR m.event_id IS NOT NULL)
ORDER BY 1, 2
