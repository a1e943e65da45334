-- The rows of the triangle table {table} a run writes, for its checks (sql/checks/): those
-- describing a calendar month of [:window_start, :window_end), each with that month. A tenant held
-- back (a value no column can hold) kept its old rows: the run wrote none of them.
CREATE TEMP TABLE {touched_rows} ON COMMIT DROP AS
SELECT *, (cohort_month + month_number * interval '1 month')::date AS month
FROM {table}
WHERE cohort_month + month_number * interval '1 month' >= CAST(:window_start AS date)
  AND cohort_month + month_number * interval '1 month' < CAST(:window_end AS date)
  AND tenant_id NOT IN (SELECT tenant_id FROM tenants_not_written)
