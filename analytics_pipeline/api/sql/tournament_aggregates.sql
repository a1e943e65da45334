-- Every column of tournament_aggregates for one tenant and period type, for the periods that
-- overlap [:date_from, :date_to] (docs/metrics.md#tournament-metrics). completion_rate is stored in
-- percent and returned as a fraction (1 = 100 %), as every rate of the API (docs/api.md#units).
SELECT id, tenant_id, period_type, period_start, period_end, tournament_count, completed_count,
       round(completion_rate / 100, 4) AS completion_rate, total_players, avg_players, avg_duration_minutes, most_popular_format,
       revenue, updated_at
FROM tournament_aggregates
WHERE tenant_id = :tenant_id
  AND period_type = :period_type
  AND period_start <= :date_to
  AND period_end >= :date_from
ORDER BY period_start
