-- Each written row against its neighbours in the same cohort.
SELECT DISTINCT later.id, 'ltv ' || later.ltv || ' < ' || earlier.ltv || ' of month ' || earlier.month_number
FROM cohort_touched_rows t
JOIN user_cohorts earlier
  ON earlier.tenant_id = t.tenant_id AND earlier.cohort_month = t.cohort_month
 AND earlier.month_number IN (t.month_number - 1, t.month_number)
JOIN user_cohorts later
  ON later.tenant_id = t.tenant_id AND later.cohort_month = t.cohort_month
 AND later.month_number = earlier.month_number + 1
WHERE later.ltv < earlier.ltv
ORDER BY 1
