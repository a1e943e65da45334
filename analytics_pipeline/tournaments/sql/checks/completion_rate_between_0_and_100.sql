SELECT a.id, 'completion_rate ' || a.completion_rate
FROM tournament_aggregates a
JOIN tournament_touched_periods p USING (period_type, period_start)
WHERE a.tenant_id NOT IN (SELECT tenant_id FROM tenants_not_written)  -- held back: the run wrote none of its rows
  AND (NOT a.completion_rate BETWEEN 0 AND 100
       OR a.tournament_count < 0 OR a.completed_count < 0 OR a.total_players < 0
       OR a.avg_players < 0 OR a.avg_duration_minutes < 0 OR a.revenue < 0)
ORDER BY a.id
