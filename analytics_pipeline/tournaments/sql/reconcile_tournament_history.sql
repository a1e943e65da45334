-- Reconciliation of tournament_history (docs/ingestion.md#reconciliation): per tenant and day,
-- the events naming a tournament (docs/metrics.md#tournament-state) committed before the state's
-- last absorb ({absorbed}) that are still in analytics_events, against those the state holds: their
-- tournament in tournament_history, or, when the absorb found them malformed, the event in
-- malformed_events.
SELECT e.tenant_id,
       e."timestamp"::date AS day,
       count(*) AS raw_events,
       count(*) FILTER (WHERE h.tournament_id IS NOT NULL OR m.event_id IS NOT NULL) AS in_state
FROM analytics_events AS e
LEFT JOIN tournament_history AS h
       ON h.tenant_id = e.tenant_id AND h.tournament_id = e.event_data ->> 'tournament_id'
LEFT JOIN malformed_events AS m ON m.event_id = e.id
WHERE (e.event_type IN ('tournament_created', 'tournament_started', 'tournament_completed',
                        'tournament_cancelled', 'player_registered')
       OR e.event_type = 'payment_completed' AND e.event_data ? 'tournament_id')
  AND {absorbed}
GROUP BY 1, 2
HAVING count(*) <> count(*) FILTER (WHERE h.tournament_id IS NOT NULL OR m.event_id IS NOT NULL)
ORDER BY 1, 2
