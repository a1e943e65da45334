-- Store the computed rows (sql/aggregate.sql) of the tenants not held back; the rows of a tenant
-- held back were left in place by sql/delete_touched.sql.
WITH written AS (
    INSERT INTO tournament_aggregates (
        id, tenant_id, period_start, period_end, period_type, tournament_count, completed_count,
        completion_rate, total_players, avg_players, avg_duration_minutes, most_popular_format,
        revenue, updated_at
    )
    SELECT tenant_id || ':' || period_type || ':' || to_char(period_start, 'YYYY-MM-DD'),
           tenant_id, period_start, period_end, period_type, tournament_count, completed_count,
           completion_rate, total_players, avg_players, avg_duration_minutes, most_popular_format,
           revenue, now() AT TIME ZONE 'UTC'
    FROM tournament_rows
    RETURNING period_type, tenant_id
)
-- One row per period type, and a total row (period_type NULL) with the distinct tenants.
SELECT period_type, count(*) AS rows_written, count(DISTINCT tenant_id) AS tenants
FROM written
GROUP BY GROUPING SETS ((period_type), ())
