-- The recent signup cohorts' retention triangle (docs/metrics.md#user_cohorts): each cohort's
-- months up to the end of the report's period. Also the CSV attachment, where, as in every report
-- CSV, a rate is a fraction (1 = 100 %): the table stores it in percent.
SELECT cohort_month, month_number, cohort_size, retained_users, round(retention_rate / 100, 4) AS retention_rate,
       revenue, ltv
FROM user_cohorts
WHERE tenant_id = :tenant_id
  AND cohort_month BETWEEN :first_cohort AND :end
  AND cohort_month + make_interval(months => month_number) <= :end
ORDER BY cohort_month, month_number
