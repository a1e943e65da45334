-- The rows a run writes, for its checks (sql/checks/values_add_up_to_user_cohorts.sql, retention_rate_between_0_and_1.sql): those describing a calendar
-- month of [:window_start, :window_end), each with that month; a tenant held back kept its old rows.
CREATE TEMP TABLE cohort_segment_touched_rows ON COMMIT DROP AS
SELECT *, (cohort_month + month_number * interval '1 month')::date AS month
FROM user_cohort_segments
WHERE cohort_month + month_number * interval '1 month' >= CAST(:window_start AS date)
  AND cohort_month + month_number * interval '1 month' < CAST(:window_end AS date)
  AND tenant_id NOT IN (SELECT tenant_id FROM tenants_not_written)
