-- Counts and sums against tournament_history, and no row missing or extra
-- (docs/metrics.md#tournament_aggregates).
WITH expected AS (
    SELECT h.tenant_id, p.period_type, p.period_start, count(*) AS tournament_count,
           count(h.completed_at) AS completed_count, sum(h.player_count) AS total_players,
           round(sum(h.revenue), 2) AS revenue
    FROM tournament_touched_periods p
    JOIN tournament_history h ON h.tournament_day BETWEEN p.period_start AND p.period_end
    -- a tenant held back (a value no column can hold) kept its old rows: the run wrote none
    WHERE h.tenant_id NOT IN (SELECT tenant_id FROM tenants_not_written)
    GROUP BY 1, 2, 3
),
actual AS (
    SELECT a.* FROM tournament_aggregates a
    JOIN tournament_touched_periods p USING (period_type, period_start)
    WHERE a.tenant_id NOT IN (SELECT tenant_id FROM tenants_not_written)
)
SELECT coalesce(a.id, e.tenant_id || ':' || e.period_type || ':' || e.period_start),
       CASE WHEN a.id IS NULL THEN 'missing row'
            WHEN e.tenant_id IS NULL THEN 'row without tournaments'
            ELSE 'differs from tournament_history' END
FROM expected e
FULL JOIN actual a USING (tenant_id, period_type, period_start)
WHERE (e.tournament_count, e.completed_count, e.total_players, e.revenue)
      IS DISTINCT FROM (a.tournament_count, a.completed_count, a.total_players, a.revenue)
ORDER BY 1
