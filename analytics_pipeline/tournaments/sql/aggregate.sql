-- tournament_aggregates rows of the touched periods, all tenants, from tournament_history
-- (docs/metrics.md#tournament_aggregates), into a temporary table whose values are not yet cast to
-- the columns' types (sql/insert_rows.sql stores them). Each period is computed from its own
-- tournaments, so rates and averages come from the period's totals, never from averaged days.
CREATE TEMP TABLE tournament_rows ON COMMIT DROP AS
WITH members AS (
    SELECT p.period_type,
           p.period_start,
           p.period_end,
           h.tenant_id,
           h.format,
           h.player_count,
           h.revenue,
           h.completed_at IS NOT NULL AS completed,
           -- docs/metrics.md#tournament-duration
           CASE
               WHEN h.completed_at IS NULL THEN NULL
               WHEN h.completion_duration_minutes IS NOT NULL THEN h.completion_duration_minutes
               WHEN h.started_at <= h.completed_at
                   THEN extract(epoch FROM h.completed_at - h.started_at) / 60
           END AS duration_minutes
    FROM tournament_touched_periods p
    -- docs/metrics.md#tournament-membership
    JOIN tournament_history h ON h.tournament_day BETWEEN p.period_start AND p.period_end
),
totals AS (
    SELECT tenant_id,
           period_type,
           period_start,
           period_end,
           count(*) AS tournament_count,
           count(*) FILTER (WHERE completed) AS completed_count,
           sum(player_count) AS total_players,
           avg(duration_minutes) AS avg_duration_minutes,
           sum(revenue) AS revenue
    FROM members
    GROUP BY tenant_id, period_type, period_start, period_end
),
-- docs/metrics.md#most-popular-format: most tournaments, ties to the first in byte order.
popular AS (
    SELECT DISTINCT ON (tenant_id, period_type, period_start)
           tenant_id, period_type, period_start, format
    FROM (
        SELECT tenant_id, period_type, period_start, format, count(*) AS tournaments
        FROM members
        WHERE format IS NOT NULL
        GROUP BY tenant_id, period_type, period_start, format
    ) f
    ORDER BY tenant_id, period_type, period_start, tournaments DESC, format COLLATE "C"
)
SELECT t.tenant_id,
       t.period_start,
       t.period_end,
       t.period_type,
       t.tournament_count,
       t.completed_count,
       round(t.completed_count * 100.0 / t.tournament_count, 2) AS completion_rate,
       t.total_players,
       round(t.total_players::numeric / t.tournament_count, 2) AS avg_players,
       round(t.avg_duration_minutes, 2) AS avg_duration_minutes,
       left(f.format, 100) AS most_popular_format,
       round(t.revenue, 2) AS revenue
FROM totals t
LEFT JOIN popular f USING (tenant_id, period_type, period_start)
