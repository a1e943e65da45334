-- Remove every row of the touched periods; the insert that follows writes them again, in the same
-- transaction, so readers see the old rows or the new ones, never a mix.
DELETE FROM tournament_aggregates a
USING tournament_touched_periods p
WHERE a.period_type = p.period_type AND a.period_start = p.period_start
