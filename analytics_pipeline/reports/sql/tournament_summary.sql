-- Key tournament figures of the report's period against the period before. Counts add up over
-- the period's rows; averages are the rows' values weighted by what they average over
-- (tournaments, or completed tournaments for the duration), so one row gives its own value. The
-- completion rate is recomputed from the totals (docs/metrics.md#tournament-metrics) as a fraction,
-- like every rate a report shows, and its change is in percentage points (analytics_kpi_change,
-- docs/metrics.md#change-against-the-previous-period); the others' change is in percent.
WITH totals AS (
    SELECT CASE WHEN period_start >= :start THEN 'current' ELSE 'previous' END AS side,
           count(*) AS row_count,
           sum(tournament_count) AS tournament_count,
           sum(completed_count) AS completed_count,
           round(sum(completed_count)::numeric / nullif(sum(tournament_count), 0), 4) AS completion_rate,
           sum(total_players) AS total_players,
           round(sum(avg_players * tournament_count) / nullif(sum(tournament_count), 0), 2)
               AS avg_players,
           round(sum(avg_duration_minutes * completed_count)
                 / nullif(sum(completed_count) FILTER (WHERE avg_duration_minutes IS NOT NULL), 0), 2)
               AS avg_duration_minutes,
           sum(revenue) AS revenue
    FROM tournament_aggregates
    WHERE tenant_id = :tenant_id AND period_type = :period_type
      AND period_start BETWEEN :previous_start AND :end
    GROUP BY 1
)
SELECT f.metric, f.unit, f.current, f.previous,
       analytics_kpi_change(f.unit, f.current, f.previous) AS change_pct,
       coalesce(c.row_count, 0) AS current_rows
FROM (SELECT 1) AS one
LEFT JOIN totals AS c ON c.side = 'current'
LEFT JOIN totals AS p ON p.side = 'previous'
CROSS JOIN LATERAL (VALUES
    (1, 'tournament_count', 'count', c.tournament_count, p.tournament_count),
    (2, 'completed_count', 'count', c.completed_count, p.completed_count),
    (3, 'completion_rate', 'ratio', c.completion_rate, p.completion_rate),
    (4, 'total_players', 'count', c.total_players, p.total_players),
    (5, 'avg_players', 'number', c.avg_players, p.avg_players),
    (6, 'avg_duration_minutes', 'number', c.avg_duration_minutes, p.avg_duration_minutes),
    (7, 'revenue', 'amount', c.revenue, p.revenue)
) AS f(position, metric, unit, current, previous)
ORDER BY f.position
