-- Every column of tournament_aggregates for one tenant and period type, for the periods that
-- overlap [:date_from, :date_to] (docs/metrics.md#tournament-metrics).
SELECT id, tenant_id, period_type, period_start, period_end, tournament_count, completed_count,
       completion_rate, total_players, avg_players, avg_duration_minutes, most_popular_format,
       revenue, updated_at
FROM tournament_aggregates
WHERE tenant_id = :tenant_id
  AND period_type = :period_type
  AND period_start <= :date_to
  AND period_end >= :date_from
ORDER BY period_start
