-- Recomputed from the state tables another way than aggregate.sql (cumulative revenue by a range
-- join of cohort months rather than a running sum; each row's month from its own cohort_month and
-- month_number), then compared; no row missing or extra (docs/metrics.md#user_cohorts).
WITH months AS (
    SELECT m::date AS month
    FROM generate_series(CAST(:window_start AS date), CAST(:window_end AS date) - 1,
                         interval '1 month') AS m
),
cohorts AS (
    SELECT tenant_id, cohort_month, count(*) AS cohort_size
    FROM user_signups
    -- a tenant held back kept its old rows (sql/touched_rows.sql)
    WHERE tenant_id NOT IN (SELECT tenant_id FROM tenants_not_written)
    GROUP BY 1, 2
),
-- Per cohort and month: users active and their revenue; before the window only what ltv
-- needs (months with revenue).
cohort_months AS (
    SELECT s.tenant_id, s.cohort_month, a.activity_month,
           count(*) AS active_users, sum(a.revenue) AS revenue
    FROM user_signups s
    JOIN user_activity_months a USING (tenant_id, user_id)
    WHERE a.activity_month >= s.cohort_month
      AND a.activity_month < CAST(:window_end AS date)
      AND (a.activity_month >= CAST(:window_start AS date) OR a.revenue > 0)
    GROUP BY 1, 2, 3
),
expected AS (
    SELECT c.tenant_id, c.cohort_month, m.month, c.cohort_size,
           CASE WHEN m.month = c.cohort_month THEN c.cohort_size
                ELSE coalesce(sum(x.active_users) FILTER (WHERE x.activity_month = m.month), 0)
           END AS retained_users,
           round(coalesce(sum(x.revenue) FILTER (WHERE x.activity_month = m.month), 0), 2) AS revenue,
           round(coalesce(sum(x.revenue), 0) / c.cohort_size, 2) AS ltv
    FROM cohorts c
    JOIN months m ON m.month >= c.cohort_month
    LEFT JOIN cohort_months x
      ON x.tenant_id = c.tenant_id AND x.cohort_month = c.cohort_month
     AND x.activity_month <= m.month
    GROUP BY c.tenant_id, c.cohort_month, c.cohort_size, m.month
)
SELECT coalesce(a.id, e.tenant_id || ':' || e.cohort_month || ' month ' || e.month),
       CASE WHEN a.id IS NULL THEN 'missing row'
            WHEN e.tenant_id IS NULL THEN 'row without a cohort'
            ELSE 'differs from user_signups/user_activity_months' END
FROM expected e
FULL JOIN cohort_touched_rows a USING (tenant_id, cohort_month, month)
WHERE (e.cohort_size, e.retained_users, e.revenue, e.ltv)
      IS DISTINCT FROM (a.cohort_size, a.retained_users, a.revenue, a.ltv)
ORDER BY 1
