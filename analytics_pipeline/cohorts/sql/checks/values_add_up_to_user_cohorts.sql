-- The identity of docs/metrics.md#cohort-segments: for every written month and every dimension,
-- the values' cohort_size, retained_users and revenue add up to the user_cohorts row of the same
-- tenant, cohort and month; a dimension missing from a cohort or a value without a cohort fails.
-- {segment_rows} is the rows the run wrote (cohort_segment_touched_rows), or, before the write, those
-- it computed (segments.py: the run brings user_cohorts up to date when they would not add up to it).
WITH dimensions AS (
    SELECT unnest(ARRAY['first_plan', 'source']) AS dimension
),
totals AS (
    SELECT c.tenant_id, c.cohort_month, c.month_number, d.dimension, c.cohort_size, c.retained_users, c.revenue
    FROM user_cohorts c
    CROSS JOIN dimensions d
    WHERE c.cohort_month + c.month_number * interval '1 month' >= CAST(:window_start AS date)
      AND c.cohort_month + c.month_number * interval '1 month' < CAST(:window_end AS date)
      AND c.tenant_id NOT IN (SELECT tenant_id FROM tenants_not_written)
),
summed AS (
    SELECT tenant_id, cohort_month, month_number, dimension,
           sum(cohort_size) AS cohort_size, sum(retained_users) AS retained_users, sum(revenue) AS revenue
    FROM {segment_rows}
    GROUP BY 1, 2, 3, 4
)
SELECT tenant_id || ':' || cohort_month || ':' || month_number || ':' || dimension,
       CASE WHEN t.tenant_id IS NULL THEN 'no user_cohorts row'
            WHEN s.tenant_id IS NULL THEN 'no segment rows'
            ELSE 'values add up to cohort_size ' || s.cohort_size || ', retained_users ' || s.retained_users
                 || ', revenue ' || s.revenue || '; user_cohorts has ' || t.cohort_size || ', '
                 || t.retained_users || ', ' || t.revenue END
FROM totals t
FULL JOIN summed s USING (tenant_id, cohort_month, month_number, dimension)
WHERE (t.cohort_size, t.retained_users, t.revenue) IS DISTINCT FROM (s.cohort_size, s.retained_users, s.revenue)
ORDER BY 1
