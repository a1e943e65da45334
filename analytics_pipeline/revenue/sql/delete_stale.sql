-- Remove the stored rows of the touched periods that the run no longer produces (a day that
-- lost its last payment, a period left without day rows). :days picks the day rows or the longer
-- periods; {rows} is the temporary table holding what the run computed.
DELETE FROM revenue_aggregates AS r
USING ({touched_periods}) AS t
WHERE r.period_type = t.period_type
  AND r.period_start = t.period_start
  AND (t.period_type = 'day') = :days
  AND NOT EXISTS (
      SELECT 1 FROM {rows} AS n
      WHERE n.tenant_id = r.tenant_id AND n.period_type = r.period_type AND n.period_start = r.period_start
  )
