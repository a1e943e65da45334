-- The tournament_aggregates rows a report reads (docs/metrics.md#tournament_aggregates): the
-- report's period type over its period and the period before. Also the CSV attachment, where,
-- as in every report CSV, a rate is a fraction (1 = 100 %): the table stores it in percent.
SELECT period_type, period_start, period_end, tournament_count, completed_count,
       round(completion_rate / 100, 4) AS completion_rate,
       total_players, avg_players, avg_duration_minutes, most_popular_format, revenue
FROM tournament_aggregates
WHERE tenant_id = :tenant_id AND period_type = :period_type
  AND period_start BETWEEN :previous_start AND :end
ORDER BY period_start
