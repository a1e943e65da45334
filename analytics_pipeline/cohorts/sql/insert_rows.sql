-- Store user_cohorts' computed rows (aggregate.sql, the dimension `all`) of the tenants not held
-- back; the rows of a tenant held back were left in place by delete_months.sql. The retention
-- rate is in percent (docs/metrics.md#user_cohorts): the fraction to 4 decimals times 100.
WITH written AS (
    INSERT INTO user_cohorts (
        id, tenant_id, cohort_month, cohort_size, month_number, retained_users, retention_rate,
        revenue, ltv, updated_at
    )
    SELECT tenant_id || ':' || to_char(cohort_month, 'YYYY-MM-DD') || ':' || month_number,
           tenant_id, cohort_month, cohort_size, month_number, retained_users, retention_rate * 100,
           revenue, ltv, now() AT TIME ZONE 'UTC'
    FROM cohort_rows
    RETURNING tenant_id
)
SELECT count(*) AS rows_written, count(DISTINCT tenant_id) AS tenants
FROM written
