-- The trailing-twelve-month retention of the month rows of revenue_period_rows
-- (docs/metrics.md#ttm-nrr, docs/metrics.md#ttm-grr): the cohort is the customers with MRR > 0 at
-- the end of the last day of the month twelve months before; stored are their MRR then, their MRR
-- at the end of the month's last computed day (the day its mrr comes from), and the sum of the
-- lesser of the two per customer. From the MRR state (customer_mrr_days): a customer's MRR on a
-- day is that of their last MRR day up to it. A month whose cohort is empty keeps the zeros
-- period_rows.sql gave it.
WITH months AS (
    SELECT tenant_id, period_start, last_day,
           CAST(period_start - interval '11 months' - interval '1 day' AS date) AS base_day
    FROM revenue_period_rows
    WHERE period_type = 'month'
),
points AS (
    SELECT tenant_id, base_day AS day FROM months
    UNION
    SELECT tenant_id, last_day FROM months
),
spans AS (
    -- Each customer's MRR from one of their MRR days until the next.
    SELECT m.tenant_id, m.user_id, m.mrr, m.day AS from_day,
           lead(m.day, 1, 'infinity') OVER (PARTITION BY m.tenant_id, m.user_id ORDER BY m.day) AS to_day
    FROM customer_mrr_days AS m
    WHERE m.tenant_id IN (SELECT tenant_id FROM months)
),
paying AS (
    -- Who has MRR > 0 at the end of each point, and how much.
    SELECT p.tenant_id, p.day, s.user_id, s.mrr
    FROM points AS p
    JOIN spans AS s ON s.tenant_id = p.tenant_id AND s.from_day <= p.day AND p.day < s.to_day
    WHERE s.mrr > 0
),
cohorts AS (
    SELECT mo.tenant_id, mo.period_start,
           sum(b.mrr) AS mrr_before,
           sum(coalesce(n.mrr, 0)) AS mrr_now,
           sum(least(coalesce(n.mrr, 0), b.mrr)) AS retained_mrr
    FROM months AS mo
    JOIN paying AS b ON b.tenant_id = mo.tenant_id AND b.day = mo.base_day
    LEFT JOIN paying AS n ON n.tenant_id = mo.tenant_id AND n.day = mo.last_day AND n.user_id = b.user_id
    GROUP BY mo.tenant_id, mo.period_start
)
UPDATE revenue_period_rows AS r
SET ttm_cohort_mrr_before = c.mrr_before,
    ttm_cohort_mrr = c.mrr_now,
    ttm_cohort_retained_mrr = c.retained_mrr
FROM cohorts AS c
WHERE r.tenant_id = c.tenant_id
  AND r.period_type = 'month'
  AND r.period_start = c.period_start
