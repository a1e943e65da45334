-- Malformed events among those tournament_aggregates reads, by the day they happened, per tenant,
-- type and reason: from the copies the absorb keeps (malformed_events), which outlive the raw events.
SELECT tenant_id, event_type, problem, count(*) AS events
FROM malformed_events
WHERE "timestamp" >= :window_start
  AND "timestamp" < :window_end
  AND (event_type IN ('tournament_created', 'tournament_started', 'tournament_completed',
                      'tournament_cancelled', 'player_registered')
       OR event_type = 'payment_completed' AND event_data ? 'tournament_id')
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3
