-- Malformed events (docs/events.md) among those tournament_aggregates reads, by the day they
-- happened, per tenant, type and reason. One index range scan per tenant
-- (analytics_events_tenant_id_timestamp_idx) instead of a scan of the whole table.
SELECT o.id AS tenant_id, m.event_type, m.problem, m.events
FROM organizations o
CROSS JOIN LATERAL (
    SELECT e.event_type,
           analytics_event_problem(e.event_type, e.event_data, e.user_id) AS problem,
           count(*) AS events
    FROM analytics_events e
    WHERE e.tenant_id = o.id
      AND e."timestamp" >= :window_start
      AND e."timestamp" < :window_end
      AND (e.event_type IN ('tournament_created', 'tournament_started', 'tournament_completed',
                            'tournament_cancelled', 'player_registered')
           OR e.event_type = 'payment_completed' AND e.event_data ? 'tournament_id')
      AND analytics_event_problem(e.event_type, e.event_data, e.user_id) IS NOT NULL
    GROUP BY 1, 2
) m
ORDER BY 1, 2, 3
