-- The retention triangle of the cohorts [:date_from, :date_to] (months), every month of each
-- (docs/metrics.md#cohort-metrics). retention_rate is stored in percent and returned as a fraction
-- (1 = 100 %), the API's and the CSVs' convention for every rate (docs/api.md#units): exact, the
-- stored value having two decimals.
SELECT cohort_month, month_number, cohort_size, retained_users, round(retention_rate / 100, 4) AS retention_rate,
       revenue, ltv
FROM user_cohorts
WHERE tenant_id = :tenant_id
  AND cohort_month BETWEEN :date_from AND :date_to
ORDER BY cohort_month, month_number
