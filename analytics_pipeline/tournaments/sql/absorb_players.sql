-- Distinct (tournament, player) registrations (docs/metrics.md#tournament_aggregates). Each
-- tournament keeps its set of players, so re-reading a registration changes nothing.
WITH registered AS (
    SELECT tenant_id, tournament_id, array_agg(DISTINCT user_id) AS player_ids
    FROM tournament_window_events
    WHERE event_type = 'player_registered' AND problem IS NULL
    GROUP BY tenant_id, tournament_id
),
merged AS (
    SELECT h.tenant_id,
           h.tournament_id,
           ARRAY(SELECT DISTINCT p FROM unnest(h.player_ids || r.player_ids) AS p ORDER BY p) AS player_ids
    FROM tournament_history h
    JOIN registered r USING (tenant_id, tournament_id)
)
UPDATE tournament_history h
SET player_ids = m.player_ids,
    player_count = cardinality(m.player_ids),
    updated_at = now() AT TIME ZONE 'UTC'
FROM merged m
WHERE h.tenant_id = m.tenant_id
  AND h.tournament_id = m.tournament_id
  AND h.player_ids IS DISTINCT FROM m.player_ids
