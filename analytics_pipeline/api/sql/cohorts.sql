-- The retention triangle of the cohorts [:date_from, :date_to] (months), every month of each
-- (docs/metrics.md#cohort-metrics).
SELECT cohort_month, month_number, cohort_size, retained_users, retention_rate, revenue, ltv
FROM user_cohorts
WHERE tenant_id = :tenant_id
  AND cohort_month BETWEEN :date_from AND :date_to
ORDER BY cohort_month, month_number
