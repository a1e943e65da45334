-- The week, month, quarter and year rows that contain a day of the window, recomputed from the
-- day rows (docs/metrics.md#periods): flows are the sums of the period's days; mrr and
-- active_customers are the values of its last computed day. The days are the stored ones outside
-- the window and the window's just computed (revenue_day_rows), which the write stores: computed
-- before the write, so that a value of a period that no column can hold keeps its tenant out of
-- the write, days included.
CREATE TEMP TABLE revenue_period_rows ON COMMIT DROP AS
WITH touched AS (
    SELECT period_type, period_start, period_end
    FROM ({touched_periods}) AS t
    WHERE period_type <> 'day'
),
-- Only the days of the touched periods: a run reads a year or so of day rows, not the history.
day_rows AS (
    SELECT tenant_id, period_start, mrr, new_revenue, reactivation_revenue, expansion_revenue,
           contraction_revenue, churned_revenue, total_revenue, payment_count, payment_success_count,
           refund_count, refund_amount,
           active_customers, new_customers, reactivated_customers, churned_customers
    FROM revenue_aggregates
    WHERE period_type = 'day'
      AND (period_start < :window_start OR period_start >= :window_end)
      AND period_start >= (SELECT min(period_start) FROM touched)
      AND period_start <= (SELECT max(period_end) FROM touched)
    UNION ALL
    SELECT tenant_id, period_start, mrr, new_revenue, reactivation_revenue, expansion_revenue,
           contraction_revenue, churned_revenue, total_revenue, payment_count, payment_success_count,
           refund_count, refund_amount,
           active_customers, new_customers, reactivated_customers, churned_customers
    FROM revenue_day_rows
),
computed AS (
    SELECT
        r.tenant_id,
        t.period_type,
        t.period_start,
        t.period_end,
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
        max(r.period_start) AS last_day,
        -- Month rows: set by ttm_rows.sql, 0 while the cohort is empty (docs/metrics.md#ttm-nrr).
        CASE WHEN t.period_type = 'month' THEN CAST(0 AS numeric) END AS ttm_cohort_mrr_before,
        CASE WHEN t.period_type = 'month' THEN CAST(0 AS numeric) END AS ttm_cohort_mrr,
        CASE WHEN t.period_type = 'month' THEN CAST(0 AS numeric) END AS ttm_cohort_retained_mrr
    -- Each day in its week, month, quarter and year, computed from the day and joined by equality
    -- (as the segments' roll_up.sql does), not by range.
    FROM day_rows AS r
    CROSS JOIN (VALUES ('week'), ('month'), ('quarter'), ('year')) AS l(period_type)
    JOIN touched AS t
      ON t.period_type = l.period_type
     AND t.period_start = date_trunc(l.period_type, CAST(r.period_start AS timestamp))::date
    GROUP BY r.tenant_id, t.period_type, t.period_start, t.period_end
)
SELECT * FROM computed
