-- Store user_cohort_segments' computed rows (aggregate.sql, the dimensions first_plan and
-- source) of the tenants not held back; the rows of a tenant held back were left in place by
-- delete_months.sql.
WITH written AS (
    INSERT INTO user_cohort_segments (
        id, tenant_id, cohort_month, month_number, dimension, value, cohort_size, retained_users,
        retention_rate, revenue, ltv, updated_at
    )
    SELECT tenant_id || ':' || to_char(cohort_month, 'YYYY-MM-DD') || ':' || month_number
               || ':' || dimension || ':' || value,
           tenant_id, cohort_month, month_number, dimension, value, cohort_size, retained_users,
           retention_rate, revenue, ltv, now() AT TIME ZONE 'UTC'
    FROM cohort_segment_rows
    RETURNING tenant_id
)
SELECT count(*) AS rows_written, count(DISTINCT tenant_id) AS tenants
FROM written
