-- Remove the stored rows of the touched periods that the run no longer produces; :days picks the
-- day rows or the longer periods; {rows} holds what the run computed. The rows of a tenant held
-- back (a value no column can hold) stay as they were (docs/metrics.md#values-out-of-range).
DELETE FROM revenue_segments AS r
-- The touched periods' first days as an array: one index lookup each, whatever the planner
-- guesses of the periods' number.
WHERE r.period_start = ANY (ARRAY(
          SELECT t.period_start FROM ({touched_periods}) AS t WHERE (t.period_type = 'day') = :days
      ))
  -- Of those, the periods that contain a day of the window (check_rows.sql).
  AND r.period_start < CAST(:window_end AS date)
  AND r.period_end >= CAST(:window_start AS date)
  AND (r.period_type = 'day') = :days
  AND r.tenant_id NOT IN (SELECT tenant_id FROM tenants_not_written)
  AND NOT EXISTS (
      SELECT 1 FROM {rows} AS n
      WHERE n.tenant_id = r.tenant_id AND n.period_type = r.period_type AND n.period_start = r.period_start
        AND n.dimension = r.dimension AND n.value = r.value
  )
