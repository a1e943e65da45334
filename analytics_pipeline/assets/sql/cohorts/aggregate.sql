-- user_cohorts rows of the calendar months [:window_start, :window_end), all tenants, from
-- user_signups and user_activity_months (docs/metrics.md#user_cohorts): one row for every cohort
-- that exists by the month, zeros included, so the triangle is complete.
WITH months AS (
    SELECT m::date AS month
    FROM generate_series(CAST(:window_start AS date), CAST(:window_end AS date) - 1, interval '1 month') AS m
),
cohorts AS (
    SELECT tenant_id, cohort_month, count(*) AS cohort_size
    FROM user_signups
    WHERE cohort_month < :window_end
    GROUP BY tenant_id, cohort_month
),
-- Per cohort and calendar month: users active and their revenue. Months before the window are
-- needed only for ltv, hence only where there was revenue.
monthly AS (
    SELECT s.tenant_id, s.cohort_month, a.activity_month,
           count(*) AS active_users, sum(a.revenue) AS revenue
    FROM user_signups s
    JOIN user_activity_months a
      ON a.tenant_id = s.tenant_id
     AND a.user_id = s.user_id
     AND a.activity_month >= s.cohort_month
     AND a.activity_month < :window_end
     AND (a.activity_month >= :window_start OR a.revenue > 0)
    WHERE s.cohort_month < :window_end
    GROUP BY s.tenant_id, s.cohort_month, a.activity_month
),
cells AS (
    SELECT c.tenant_id, c.cohort_month, c.cohort_size, m.month,
           ((extract(year FROM m.month) - extract(year FROM c.cohort_month)) * 12
            + extract(month FROM m.month) - extract(month FROM c.cohort_month))::int AS month_number,
           -- month 0 is the whole cohort (docs/metrics.md#user_cohorts)
           CASE WHEN m.month = c.cohort_month THEN c.cohort_size
                ELSE coalesce(sum(x.active_users) FILTER (WHERE x.activity_month = m.month), 0)
           END AS retained_users,
           coalesce(sum(x.revenue) FILTER (WHERE x.activity_month = m.month), 0) AS revenue,
           coalesce(sum(x.revenue), 0) AS cumulative_revenue
    FROM cohorts c
    JOIN months m ON m.month >= c.cohort_month
    LEFT JOIN monthly x
      ON x.tenant_id = c.tenant_id AND x.cohort_month = c.cohort_month AND x.activity_month <= m.month
    GROUP BY c.tenant_id, c.cohort_month, c.cohort_size, m.month
),
written AS (
    INSERT INTO user_cohorts (
        id, tenant_id, cohort_month, cohort_size, month_number, retained_users, retention_rate,
        revenue, ltv, updated_at
    )
    SELECT tenant_id || ':' || to_char(cohort_month, 'YYYY-MM-DD') || ':' || month_number,
           tenant_id,
           cohort_month,
           cohort_size,
           month_number,
           retained_users,
           round(retained_users * 100.0 / cohort_size, 2),
           round(revenue, 2),
           round(cumulative_revenue / cohort_size, 2),
           now() AT TIME ZONE 'UTC'
    FROM cells
    RETURNING tenant_id
)
SELECT count(*) AS rows_written, count(DISTINCT tenant_id) AS tenants
FROM written
