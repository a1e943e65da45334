-- Remove the stored rows of the touched periods that the run no longer produces; :days picks the
-- day rows or the longer periods; {rows} holds what the run computed. The rows of a tenant held
-- back (a value no column can hold) stay as they were (docs/metrics.md#values-out-of-range).
DELETE FROM revenue_segments AS r
-- The touched periods' first days as an array: one index lookup each, whatever the planner
-- guesses of the periods' number.
WHERE r.period_start = ANY (ARRAY(
          SELECT t.period_start FROM ({touched_periods}) AS t WHERE (t.period_type = 'day') = :days
      ))
  AND (r.period_type, r.period_start) IN (SELECT t.period_type, t.period_start FROM ({touched_periods}) AS t)
  AND (r.period_type = 'day') = :days
  AND r.tenant_id NOT IN (SELECT tenant_id FROM tenants_not_written)
  AND NOT EXISTS (
      SELECT 1 FROM {rows} AS n
      WHERE n.tenant_id = r.tenant_id AND n.period_type = r.period_type AND n.period_start = r.period_start
        AND n.dimension = r.dimension AND n.value = r.value
  )
