-- The absorb window's tournament events, read from analytics_events once and shared by the absorb
-- statements that follow; `problem` is NULL for a valid event (docs/events.md). Which events name
-- a tournament: docs/metrics.md#tournament-state. Collected into a table dropped at commit: as
-- CREATE TABLE AS the read may run in parallel, which INSERT ... SELECT never does.
CREATE TEMP TABLE tournament_window_events ON COMMIT DROP AS
SELECT e.id,
       e.tenant_id,
       e.event_type,
       e.event_data ->> 'tournament_id' AS tournament_id,
       e.user_id,
       e."timestamp",
       e.event_data ->> 'format' AS format,
       analytics_number(e.event_data -> 'duration_minutes') AS duration_minutes,
       analytics_amount(e.event_data) AS amount,
       analytics_event_problem(e.event_type, e.event_data, e.user_id, e."timestamp", e.created_at) AS problem
FROM analytics_events e
WHERE {committed}
  AND (e.event_type IN ('tournament_created', 'tournament_started', 'tournament_completed',
                        'tournament_cancelled', 'player_registered')
       OR e.event_type = 'payment_completed' AND e.event_data ? 'tournament_id')
