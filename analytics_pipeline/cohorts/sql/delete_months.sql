-- Remove every row of the triangle table {table} (user_cohorts or user_cohort_segments) describing
-- a calendar month of [:window_start, :window_end); the insert that follows writes them again in
-- the same transaction. The rows of a tenant held back (a value no column can hold) stay as they
-- were.
DELETE FROM {table}
WHERE cohort_month + month_number * interval '1 month' >= CAST(:window_start AS date)
  AND cohort_month + month_number * interval '1 month' < CAST(:window_end AS date)
  AND tenant_id NOT IN (SELECT tenant_id FROM tenants_not_written)
