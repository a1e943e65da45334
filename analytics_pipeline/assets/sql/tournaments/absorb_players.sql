-- Distinct (tournament, player) registrations (docs/metrics.md#tournament_aggregates). Only pairs
-- inserted now are added to player_count, so re-reading a registration adds nothing.
WITH registered AS (
    INSERT INTO tournament_players (tenant_id, tournament_id, user_id)
    SELECT DISTINCT tenant_id, tournament_id, user_id
    FROM tournament_window_events
    WHERE event_type = 'player_registered'
    ON CONFLICT DO NOTHING
    RETURNING tenant_id, tournament_id
),
per_tournament AS (
    SELECT tenant_id, tournament_id, count(*) AS new_players
    FROM registered
    GROUP BY tenant_id, tournament_id
)
UPDATE tournament_history h
SET player_count = h.player_count + p.new_players,
    updated_at = now() AT TIME ZONE 'UTC'
FROM per_tournament p
WHERE h.tenant_id = p.tenant_id AND h.tournament_id = p.tournament_id
