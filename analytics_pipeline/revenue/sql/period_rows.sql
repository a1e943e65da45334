-- The week, month, quarter and year rows that contain a day of the window (docs/metrics.md#periods):
-- flows are the sums of the period's days; mrr and active_customers are the values of its last
-- computed day. Weeks and months are rolled up from their days, quarters and years from their
-- months, which are their days' sums already: a run reads a few weeks of day rows and a year of
-- month rows, not a year of days. Each row's periods are computed from it (as revenue_segments'
-- roll_up.sql does), not joined by range. The rows read are the stored ones outside the window
-- and the window's just computed (revenue_day_rows, then these months), which the write stores:
-- computed before the write, so that a value of a period that no column can hold keeps its tenant
-- out of the write, days included.
CREATE TEMP TABLE revenue_period_rows ON COMMIT DROP AS
WITH touched AS (
    SELECT period_type, period_start, period_end
    FROM ({touched_periods}) AS t
    WHERE period_type <> 'day'
),
-- The day rows of the touched weeks and months.
day_rows AS (
    SELECT tenant_id, period_start, mrr, new_revenue, reactivation_revenue, expansion_revenue,
           contraction_revenue, churned_revenue, total_revenue, payment_count, payment_success_count,
           refund_count, refund_amount,
           active_customers, new_customers, reactivated_customers, churned_customers
    FROM revenue_aggregates
    WHERE period_type = 'day'
      AND (period_start < :window_start OR period_start >= :window_end)
      AND period_start >= (SELECT min(period_start) FROM touched WHERE period_type IN ('week', 'month'))
      AND period_start <= (SELECT max(period_end) FROM touched WHERE period_type IN ('week', 'month'))
    UNION ALL
    SELECT tenant_id, period_start, mrr, new_revenue, reactivation_revenue, expansion_revenue,
           contraction_revenue, churned_revenue, total_revenue, payment_count, payment_success_count,
           refund_count, refund_amount,
           active_customers, new_customers, reactivated_customers, churned_customers
    FROM revenue_day_rows
),
weeks_and_months AS MATERIALIZED (
    SELECT
        r.tenant_id, p.level_type AS period_type, p.level_start AS period_start,
        CAST(p.level_start + p.length - interval '1 day' AS date) AS period_end,
        (array_agg(r.mrr ORDER BY r.period_start DESC))[1] AS mrr,
        sum(r.new_revenue) AS new_revenue,
        sum(r.reactivation_revenue) AS reactivation_revenue,
        sum(r.expansion_revenue) AS expansion_revenue,
        sum(r.contraction_revenue) AS contraction_revenue,
        sum(r.churned_revenue) AS churned_revenue,
        sum(r.total_revenue) AS total_revenue,
        sum(r.payment_count) AS payment_count,
        sum(r.payment_success_count) AS payment_success_count,
        sum(r.refund_count) AS refund_count,
        sum(r.refund_amount) AS refund_amount,
        (array_agg(r.active_customers ORDER BY r.period_start DESC))[1] AS active_customers,
        sum(r.new_customers) AS new_customers,
        sum(r.reactivated_customers) AS reactivated_customers,
        sum(r.churned_customers) AS churned_customers,
        max(r.period_start) AS last_day
    FROM day_rows AS r
    CROSS JOIN LATERAL (
        VALUES ('week', date_trunc('week', CAST(r.period_start AS timestamp))::date, interval '7 days'),
               ('month', date_trunc('month', CAST(r.period_start AS timestamp))::date, interval '1 month')
    ) AS p(level_type, level_start, length)
    WHERE p.level_start < CAST(:window_end AS date)
      AND p.level_start + p.length > CAST(:window_start AS date)
    GROUP BY r.tenant_id, p.level_type, p.level_start, p.length
),
-- The month rows of the touched quarters and years: the stored ones of the months the window does
-- not touch, and those just computed.
month_rows AS (
    SELECT tenant_id, period_start, mrr, new_revenue, reactivation_revenue, expansion_revenue,
           contraction_revenue, churned_revenue, total_revenue, payment_count, payment_success_count,
           refund_count, refund_amount,
           active_customers, new_customers, reactivated_customers, churned_customers,
           NULL::date AS last_day
    FROM revenue_aggregates
    WHERE period_type = 'month'
      AND period_start NOT IN (SELECT period_start FROM touched WHERE period_type = 'month')
      AND period_start >= (SELECT min(period_start) FROM touched WHERE period_type IN ('quarter', 'year'))
      AND period_start <= (SELECT max(period_end) FROM touched WHERE period_type IN ('quarter', 'year'))
    UNION ALL
    SELECT tenant_id, period_start, mrr, new_revenue, reactivation_revenue, expansion_revenue,
           contraction_revenue, churned_revenue, total_revenue, payment_count, payment_success_count,
           refund_count, refund_amount,
           active_customers, new_customers, reactivated_customers, churned_customers, last_day
    FROM weeks_and_months
    WHERE period_type = 'month'
),
quarters_and_years AS (
    SELECT
        r.tenant_id, p.level_type AS period_type, p.level_start AS period_start,
        CAST(p.level_start + p.length - interval '1 day' AS date) AS period_end,
        (array_agg(r.mrr ORDER BY r.period_start DESC))[1] AS mrr,
        sum(r.new_revenue) AS new_revenue,
        sum(r.reactivation_revenue) AS reactivation_revenue,
        sum(r.expansion_revenue) AS expansion_revenue,
        sum(r.contraction_revenue) AS contraction_revenue,
        sum(r.churned_revenue) AS churned_revenue,
        sum(r.total_revenue) AS total_revenue,
        sum(r.payment_count) AS payment_count,
        sum(r.payment_success_count) AS payment_success_count,
        sum(r.refund_count) AS refund_count,
        sum(r.refund_amount) AS refund_amount,
        (array_agg(r.active_customers ORDER BY r.period_start DESC))[1] AS active_customers,
        sum(r.new_customers) AS new_customers,
        sum(r.reactivated_customers) AS reactivated_customers,
        sum(r.churned_customers) AS churned_customers,
        -- ttm_rows.sql reads the months' only
        NULL::date AS last_day
    FROM month_rows AS r
    CROSS JOIN LATERAL (
        VALUES ('quarter', date_trunc('quarter', CAST(r.period_start AS timestamp))::date, interval '3 months'),
               ('year', date_trunc('year', CAST(r.period_start AS timestamp))::date, interval '1 year')
    ) AS p(level_type, level_start, length)
    WHERE p.level_start < CAST(:window_end AS date)
      AND p.level_start + p.length > CAST(:window_start AS date)
    GROUP BY r.tenant_id, p.level_type, p.level_start, p.length
),
computed AS (
    SELECT * FROM weeks_and_months
    UNION ALL
    SELECT * FROM quarters_and_years
)
SELECT c.*,
       -- Month rows: set by ttm_rows.sql, 0 while the cohort is empty (docs/metrics.md#ttm-nrr).
       CASE WHEN c.period_type = 'month' THEN CAST(0 AS numeric) END AS ttm_cohort_mrr_before,
       CASE WHEN c.period_type = 'month' THEN CAST(0 AS numeric) END AS ttm_cohort_mrr,
       CASE WHEN c.period_type = 'month' THEN CAST(0 AS numeric) END AS ttm_cohort_retained_mrr
FROM computed AS c
