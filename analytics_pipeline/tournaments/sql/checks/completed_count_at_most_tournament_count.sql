SELECT a.id, 'completed_count ' || a.completed_count || ' > tournament_count ' || a.tournament_count
FROM tournament_aggregates a
JOIN tournament_touched_periods p USING (period_type, period_start)
WHERE a.completed_count > a.tournament_count
  AND a.tenant_id NOT IN (SELECT tenant_id FROM tenants_not_written)  -- held back: the run wrote none of its rows
ORDER BY a.id
