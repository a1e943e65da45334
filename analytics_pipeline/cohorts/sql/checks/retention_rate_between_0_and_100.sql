SELECT id, 'retention_rate ' || retention_rate FROM cohort_touched_rows t
WHERE NOT retention_rate BETWEEN 0 AND 100
   OR cohort_size < 0 OR retained_users < 0 OR revenue < 0 OR ltv < 0
ORDER BY id
