-- retention_rate is a fraction within 0..1, retained_users never exceeds cohort_size and no size,
-- count or amount is negative (docs/metrics.md#cohort-segments).
SELECT id, 'retention_rate ' || retention_rate || ', retained_users ' || retained_users
           || ', cohort_size ' || cohort_size
FROM cohort_segment_touched_rows
WHERE NOT retention_rate BETWEEN 0 AND 1
   OR retained_users > cohort_size
   OR cohort_size <= 0 OR retained_users < 0 OR revenue < 0 OR ltv < 0
ORDER BY id
