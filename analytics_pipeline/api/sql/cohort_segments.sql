-- The retention triangle of the cohorts [:date_from, :date_to] (months) split by the dimension
-- :segment (first_plan or source) of user_cohort_segments, every month of each cohort and value
-- (docs/metrics.md#cohort-segments). retention_rate is stored as a fraction already (unlike
-- user_cohorts'), the API's convention (docs/api.md#units). Values of each cohort by cohort size,
-- largest first, then by name.
SELECT cohort_month, value, month_number, cohort_size, retained_users, retention_rate, revenue, ltv
FROM user_cohort_segments
WHERE tenant_id = :tenant_id
  AND dimension = :segment
  AND cohort_month BETWEEN :date_from AND :date_to
ORDER BY cohort_month, max(cohort_size) OVER (PARTITION BY cohort_month, value) DESC, value, month_number
