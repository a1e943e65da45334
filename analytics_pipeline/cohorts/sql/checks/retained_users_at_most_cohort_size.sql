SELECT id, 'retained_users ' || retained_users || ' > cohort_size ' || cohort_size
FROM cohort_touched_rows t
WHERE retained_users > cohort_size
ORDER BY id
