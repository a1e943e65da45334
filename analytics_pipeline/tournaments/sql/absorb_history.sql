-- Merge the window's lifecycle and registration events into one row per tournament
-- (docs/metrics.md#tournament-state). Every merge keeps the earliest event, so re-reading an event
-- changes nothing and the order in which events arrive does not matter.
WITH per_tournament AS (
    SELECT tenant_id,
           tournament_id,
           min("timestamp") FILTER (WHERE event_type = 'tournament_created') AS created_event_at,
           min("timestamp") FILTER (WHERE event_type <> 'tournament_created') AS first_activity_at,
           -- Equal timestamps are resolved by the value itself, as the merge below does.
           (array_agg(format ORDER BY "timestamp", format)
               FILTER (WHERE event_type = 'tournament_created'))[1] AS format,
           min("timestamp") FILTER (WHERE event_type = 'tournament_started') AS started_at,
           min("timestamp") FILTER (WHERE event_type = 'tournament_completed') AS completed_at,
           (array_agg(duration_minutes ORDER BY "timestamp", duration_minutes NULLS LAST)
               FILTER (WHERE event_type = 'tournament_completed'))[1] AS completion_duration_minutes
    FROM tournament_window_events
    WHERE event_type <> 'payment_completed' AND problem IS NULL
    GROUP BY tenant_id, tournament_id
)
INSERT INTO tournament_history AS h (
    tenant_id, tournament_id, tournament_day, created_event_at, first_activity_at, format,
    started_at, completed_at, completion_duration_minutes
)
SELECT tenant_id,
       tournament_id,
       -- docs/metrics.md#tournament-membership
       coalesce(created_event_at, first_activity_at)::date,
       created_event_at,
       first_activity_at,
       format,
       started_at,
       completed_at,
       completion_duration_minutes
FROM per_tournament
ON CONFLICT (tenant_id, tournament_id) DO UPDATE SET
    created_event_at = LEAST(h.created_event_at, EXCLUDED.created_event_at),
    first_activity_at = LEAST(h.first_activity_at, EXCLUDED.first_activity_at),
    format = CASE
        WHEN h.created_event_at IS NULL
             OR (EXCLUDED.created_event_at, EXCLUDED.format) < (h.created_event_at, h.format)
            THEN coalesce(EXCLUDED.format, h.format)
        ELSE h.format
    END,
    started_at = LEAST(h.started_at, EXCLUDED.started_at),
    completed_at = LEAST(h.completed_at, EXCLUDED.completed_at),
    completion_duration_minutes = CASE
        WHEN EXCLUDED.completed_at IS NULL THEN h.completion_duration_minutes
        WHEN h.completed_at IS NULL OR EXCLUDED.completed_at < h.completed_at
            THEN EXCLUDED.completion_duration_minutes
        WHEN EXCLUDED.completed_at = h.completed_at
            THEN LEAST(h.completion_duration_minutes, EXCLUDED.completion_duration_minutes)
        ELSE h.completion_duration_minutes
    END,
    tournament_day = coalesce(
        LEAST(h.created_event_at, EXCLUDED.created_event_at),
        LEAST(h.first_activity_at, EXCLUDED.first_activity_at)
    )::date,
    -- A late tournament_created (or an earlier first event) moves the tournament to another day;
    -- remember the day it leaves so that day's rows are recomputed too (touched_tournament_days).
    previous_tournament_day = CASE
        WHEN h.tournament_day IS DISTINCT FROM coalesce(
                 LEAST(h.created_event_at, EXCLUDED.created_event_at),
                 LEAST(h.first_activity_at, EXCLUDED.first_activity_at)
             )::date
             AND h.tournament_day IS NOT NULL
            THEN h.tournament_day
        ELSE h.previous_tournament_day
    END,
    updated_at = now() AT TIME ZONE 'UTC'
