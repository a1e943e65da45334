-- No negative amount or count; the rule is evaluated in check_rows.sql.
SELECT id, 'negative amount or count'
FROM segment_check_rows
WHERE negative
ORDER BY id
