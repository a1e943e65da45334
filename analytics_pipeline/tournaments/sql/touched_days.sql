-- Day partitions of tournament_aggregates changed by newly committed events ({committed})
-- (docs/metrics.md#tournament-membership): the day each tournament they name belongs to, which is
-- not the day a late completion or payment happened, and the day it belonged to before, should a
-- late tournament_created have moved it.
WITH late AS (
    SELECT DISTINCT e.tenant_id, e.event_data ->> 'tournament_id' AS tournament_id
    FROM analytics_events e
    WHERE {committed}
      AND (e.event_type IN ('tournament_created', 'tournament_started', 'tournament_completed',
                            'tournament_cancelled', 'player_registered')
           OR e.event_type = 'payment_completed' AND e.event_data ? 'tournament_id')
      AND analytics_event_problem(e.event_type, e.event_data, e.user_id, e."timestamp", e.created_at) IS NULL
),
-- Events tournament_history has not absorbed yet ({unabsorbed}).
unabsorbed AS (
    SELECT e.tenant_id,
           e.event_data ->> 'tournament_id' AS tournament_id,
           min(e."timestamp") FILTER (WHERE e.event_type = 'tournament_created') AS created_event_at,
           min(e."timestamp") FILTER (WHERE e.event_type <> 'tournament_created') AS first_activity_at
    FROM analytics_events e
    JOIN late l ON l.tenant_id = e.tenant_id AND l.tournament_id = e.event_data ->> 'tournament_id'
    WHERE {unabsorbed}
      AND e.event_type IN ('tournament_created', 'tournament_started', 'tournament_completed',
                           'tournament_cancelled', 'player_registered')
      AND analytics_event_problem(e.event_type, e.event_data, e.user_id, e."timestamp", e.created_at) IS NULL
    GROUP BY e.tenant_id, e.event_data ->> 'tournament_id'
)
SELECT DISTINCT d.day
FROM late l
LEFT JOIN tournament_history h USING (tenant_id, tournament_id)
LEFT JOIN unabsorbed u USING (tenant_id, tournament_id)
CROSS JOIN LATERAL (
    VALUES (coalesce(LEAST(h.created_event_at, u.created_event_at),
                     LEAST(h.first_activity_at, u.first_activity_at))::date),
           (h.tournament_day),
           (h.previous_tournament_day)
) AS d(day)
WHERE d.day IS NOT NULL
ORDER BY d.day
