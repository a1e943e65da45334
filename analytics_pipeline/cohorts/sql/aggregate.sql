-- user_cohorts rows of the calendar months [:window_start, :window_end), all tenants, from
-- user_signups and user_activity_months (docs/metrics.md#user_cohorts): one row for every cohort
-- that exists by the month, zeros included, so the triangle is complete. Into a temporary table
-- whose values are not yet cast to the columns' types (sql/insert_rows.sql stores them).
CREATE TEMP TABLE cohort_rows ON COMMIT DROP AS
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
-- needed only for ltv, hence only where there was revenue. One hash join and one hash aggregate
-- over the user months: a few thousand cells however long the history.
cells AS MATERIALIZED (
    SELECT s.tenant_id, s.cohort_month, a.activity_month,
           count(*) AS active_users, sum(a.revenue) AS revenue
    FROM user_activity_months a
    JOIN user_signups s
      ON s.tenant_id = a.tenant_id
     AND s.user_id = a.user_id
     AND s.cohort_month <= a.activity_month
    WHERE a.activity_month < :window_end
      AND (a.activity_month >= :window_start OR a.revenue > 0)
    GROUP BY s.tenant_id, s.cohort_month, a.activity_month
),
-- Each cohort's revenue before the window: where its cumulative revenue starts.
earlier AS (
    SELECT tenant_id, cohort_month, sum(revenue) AS revenue
    FROM cells
    WHERE activity_month < :window_start
    GROUP BY tenant_id, cohort_month
),
computed AS (
    SELECT c.tenant_id, c.cohort_month, c.cohort_size,
           ((extract(year FROM m.month) - extract(year FROM c.cohort_month)) * 12
            + extract(month FROM m.month) - extract(month FROM c.cohort_month))::int AS month_number,
           -- month 0 is the whole cohort (docs/metrics.md#user_cohorts)
           CASE WHEN m.month = c.cohort_month THEN c.cohort_size
                ELSE coalesce(x.active_users, 0)
           END AS retained_users,
           coalesce(x.revenue, 0) AS revenue,
           coalesce(e.revenue, 0)
             + sum(coalesce(x.revenue, 0))
                   OVER (PARTITION BY c.tenant_id, c.cohort_month ORDER BY m.month) AS cumulative_revenue
    FROM cohorts c
    JOIN months m ON m.month >= c.cohort_month
    LEFT JOIN cells x
      ON x.tenant_id = c.tenant_id AND x.cohort_month = c.cohort_month AND x.activity_month = m.month
    LEFT JOIN earlier e ON e.tenant_id = c.tenant_id AND e.cohort_month = c.cohort_month
)
SELECT tenant_id,
       cohort_month,
       cohort_size,
       month_number,
       retained_users,
       round(retained_users * 100.0 / cohort_size, 2) AS retention_rate,
       round(revenue, 2) AS revenue,
       round(cumulative_revenue / cohort_size, 2) AS ltv
FROM computed
