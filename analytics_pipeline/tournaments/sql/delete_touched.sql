-- Remove every row of the touched periods; the insert that follows writes them again, in the same
-- transaction, so readers see the old rows or the new ones, never a mix. The rows of a tenant held
-- back (a value no column can hold) stay as they were.
DELETE FROM tournament_aggregates a
USING tournament_touched_periods p
WHERE a.period_type = p.period_type AND a.period_start = p.period_start
  AND a.tenant_id NOT IN (SELECT tenant_id FROM tenants_not_written)
