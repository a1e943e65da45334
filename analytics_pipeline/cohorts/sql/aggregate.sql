-- The retention triangle's rows of the calendar months [:window_start, :window_end), all tenants,
-- from user_signups and user_activity_months (docs/metrics.md#user_cohorts), per cohort and value
-- of each dimension in :dimensions: `all`, one value holding the whole cohort, gives user_cohorts'
-- rows; `first_plan` and `source`, the users' values in the segment state (subscription_events,
-- customer_sources), user_cohort_segments' (docs/metrics.md#cohort-segments). One row for every
-- cohort and value that exists by the month, zeros included, so the triangle is complete. Into the
-- temporary table {rows}, values not yet cast to the columns' types (insert_rows.sql,
-- insert_segment_rows.sql store them).
CREATE TEMP TABLE {rows} ON COMMIT DROP AS
WITH months AS (
    SELECT m::date AS month
    FROM generate_series(CAST(:window_start AS date), CAST(:window_end AS date) - 1, interval '1 month') AS m
),
-- The plan the user's first subscription_started names (earliest, ties by event id).
first_plans AS (
    SELECT DISTINCT ON (tenant_id, user_id) tenant_id, user_id, plan_id
    FROM subscription_events
    WHERE event_type = 'subscription_started'
    ORDER BY tenant_id, user_id, occurred_at, event_id
),
-- Each cohort user once per dimension asked for, with their value; (none) where there is none. A
-- dimension not asked for is not read.
segmented AS MATERIALIZED (
    SELECT s.tenant_id, s.user_id, s.cohort_month, 'all' AS dimension, 'all' AS value
    FROM user_signups s
    WHERE s.cohort_month < :window_end AND 'all' = ANY (CAST(:dimensions AS text[]))
    UNION ALL
    SELECT s.tenant_id, s.user_id, s.cohort_month, 'first_plan', coalesce(p.plan_id, '(none)')
    FROM user_signups s
    LEFT JOIN first_plans p ON p.tenant_id = s.tenant_id AND p.user_id = s.user_id
    WHERE s.cohort_month < :window_end AND 'first_plan' = ANY (CAST(:dimensions AS text[]))
    UNION ALL
    SELECT s.tenant_id, s.user_id, s.cohort_month, 'source', coalesce(cs.source, '(none)')
    FROM user_signups s
    LEFT JOIN customer_sources cs ON cs.tenant_id = s.tenant_id AND cs.user_id = s.user_id
    WHERE s.cohort_month < :window_end AND 'source' = ANY (CAST(:dimensions AS text[]))
),
cohorts AS (
    SELECT tenant_id, cohort_month, dimension, value, count(*) AS cohort_size
    FROM segmented
    GROUP BY tenant_id, cohort_month, dimension, value
),
-- Per cohort, value and calendar month: users active and their revenue. Months before the window
-- are needed only for ltv, hence only where there was revenue. One hash join and one hash
-- aggregate over the user months: a few thousand cells however long the history.
cells AS MATERIALIZED (
    SELECT g.tenant_id, g.cohort_month, g.dimension, g.value, a.activity_month,
           count(*) AS active_users, sum(a.revenue) AS revenue
    FROM user_activity_months a
    JOIN segmented g
      ON g.tenant_id = a.tenant_id
     AND g.user_id = a.user_id
     AND g.cohort_month <= a.activity_month
    WHERE a.activity_month < :window_end
      AND (a.activity_month >= :window_start OR a.revenue > 0)
    GROUP BY g.tenant_id, g.cohort_month, g.dimension, g.value, a.activity_month
),
-- Each cohort value's revenue before the window: where its cumulative revenue starts.
earlier AS (
    SELECT tenant_id, cohort_month, dimension, value, sum(revenue) AS revenue
    FROM cells
    WHERE activity_month < :window_start
    GROUP BY tenant_id, cohort_month, dimension, value
),
computed AS (
    SELECT c.tenant_id, c.cohort_month, c.dimension, c.value, c.cohort_size,
           ((extract(year FROM m.month) - extract(year FROM c.cohort_month)) * 12
            + extract(month FROM m.month) - extract(month FROM c.cohort_month))::int AS month_number,
           -- month 0 is the whole cohort (docs/metrics.md#user_cohorts)
           CASE WHEN m.month = c.cohort_month THEN c.cohort_size
                ELSE coalesce(x.active_users, 0)
           END AS retained_users,
           coalesce(x.revenue, 0) AS revenue,
           coalesce(e.revenue, 0)
             + sum(coalesce(x.revenue, 0))
                   OVER (PARTITION BY c.tenant_id, c.cohort_month, c.dimension, c.value ORDER BY m.month)
             AS cumulative_revenue
    FROM cohorts c
    JOIN months m ON m.month >= c.cohort_month
    LEFT JOIN cells x
      ON x.tenant_id = c.tenant_id AND x.cohort_month = c.cohort_month
     AND x.dimension = c.dimension AND x.value = c.value AND x.activity_month = m.month
    LEFT JOIN earlier e
      ON e.tenant_id = c.tenant_id AND e.cohort_month = c.cohort_month
     AND e.dimension = c.dimension AND e.value = c.value
)
SELECT tenant_id,
       cohort_month,
       month_number,
       dimension,
       value,
       cohort_size,
       retained_users,
       -- a fraction, 1 = 100 % (docs/metrics.md#cohort-segments); user_cohorts stores it in
       -- percent, to 2 decimals: the same digits (insert_rows.sql)
       round(retained_users::numeric / cohort_size, 4) AS retention_rate,
       round(revenue, 2) AS revenue,
       round(cumulative_revenue / cohort_size, 2) AS ltv
FROM computed
