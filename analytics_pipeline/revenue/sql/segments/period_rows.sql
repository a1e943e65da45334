-- The week, month, quarter and year rows that contain a day of the window (docs/metrics.md#periods):
-- flows are the sums of the period's days; mrr and active_customers are the value's last day's.
-- Weeks and months are computed from their day rows: the stored ones outside the window and the
-- window's just computed (segment_day_rows), before the write, so that a value no column can hold
-- keeps its tenant out of the write, days included. Quarters and years are computed from their
-- month rows, which are those sums already: the stored ones of the months the window does not
-- touch and the ones computed here, so that a run reads a few weeks of day rows, not a year's.
CREATE TEMP TABLE segment_period_rows ON COMMIT DROP AS
WITH touched AS (
    SELECT period_type, period_start, period_end
    FROM ({touched_periods}) AS t
    WHERE period_type <> 'day'
),
short_periods AS (
    SELECT * FROM touched WHERE period_type IN ('week', 'month')
),
day_rows AS (
    SELECT tenant_id, dimension, value, period_start, mrr,
           new_revenue, reactivation_revenue, expansion_revenue, contraction_revenue, churned_revenue,
           transfer_in_revenue, transfer_out_revenue,
           active_customers, new_customers, reactivated_customers, churned_customers,
           transferred_in_customers, transferred_out_customers
    FROM revenue_segments
    WHERE period_type = 'day'
      AND (period_start < :window_start OR period_start >= :window_end)
      AND period_start >= (SELECT min(period_start) FROM short_periods)
      AND period_start <= (SELECT max(period_end) FROM short_periods)
    UNION ALL
    SELECT tenant_id, dimension, value, period_start, mrr,
           new_revenue, reactivation_revenue, expansion_revenue, contraction_revenue, churned_revenue,
           transfer_in_revenue, transfer_out_revenue,
           active_customers, new_customers, reactivated_customers, churned_customers,
           transferred_in_customers, transferred_out_customers
    FROM segment_day_rows
),
short_rows AS (
    SELECT
        r.tenant_id, t.period_type, t.period_start, t.period_end, r.dimension, r.value,
        (array_agg(r.mrr ORDER BY r.period_start DESC))[1] AS mrr,
        sum(r.new_revenue) AS new_revenue,
        sum(r.reactivation_revenue) AS reactivation_revenue,
        sum(r.expansion_revenue) AS expansion_revenue,
        sum(r.contraction_revenue) AS contraction_revenue,
        sum(r.churned_revenue) AS churned_revenue,
        sum(r.transfer_in_revenue) AS transfer_in_revenue,
        sum(r.transfer_out_revenue) AS transfer_out_revenue,
        (array_agg(r.active_customers ORDER BY r.period_start DESC))[1] AS active_customers,
        sum(r.new_customers) AS new_customers,
        sum(r.reactivated_customers) AS reactivated_customers,
        sum(r.churned_customers) AS churned_customers,
        sum(r.transferred_in_customers) AS transferred_in_customers,
        sum(r.transferred_out_customers) AS transferred_out_customers
    FROM day_rows AS r
    -- Each day's week and month, matched by equality: a hash join, not a range join.
    CROSS JOIN LATERAL (
        VALUES ('week', date_trunc('week', r.period_start)::date), ('month', date_trunc('month', r.period_start)::date)
    ) AS p(period_type, period_start)
    JOIN short_periods AS t ON t.period_type = p.period_type AND t.period_start = p.period_start
    GROUP BY r.tenant_id, t.period_type, t.period_start, t.period_end, r.dimension, r.value
),
long_periods AS (
    SELECT * FROM touched WHERE period_type IN ('quarter', 'year')
),
month_rows AS (
    SELECT tenant_id, dimension, value, period_start, mrr,
           new_revenue, reactivation_revenue, expansion_revenue, contraction_revenue, churned_revenue,
           transfer_in_revenue, transfer_out_revenue,
           active_customers, new_customers, reactivated_customers, churned_customers,
           transferred_in_customers, transferred_out_customers
    FROM revenue_segments
    WHERE period_type = 'month'
      AND period_start NOT IN (SELECT period_start FROM short_periods WHERE period_type = 'month')
      AND period_start >= (SELECT min(period_start) FROM long_periods)
      AND period_start <= (SELECT max(period_end) FROM long_periods)
    UNION ALL
    SELECT tenant_id, dimension, value, period_start, mrr,
           new_revenue, reactivation_revenue, expansion_revenue, contraction_revenue, churned_revenue,
           transfer_in_revenue, transfer_out_revenue,
           active_customers, new_customers, reactivated_customers, churned_customers,
           transferred_in_customers, transferred_out_customers
    FROM short_rows
    WHERE period_type = 'month'
),
long_rows AS (
    SELECT
        r.tenant_id, t.period_type, t.period_start, t.period_end, r.dimension, r.value,
        (array_agg(r.mrr ORDER BY r.period_start DESC))[1] AS mrr,
        sum(r.new_revenue) AS new_revenue,
        sum(r.reactivation_revenue) AS reactivation_revenue,
        sum(r.expansion_revenue) AS expansion_revenue,
        sum(r.contraction_revenue) AS contraction_revenue,
        sum(r.churned_revenue) AS churned_revenue,
        sum(r.transfer_in_revenue) AS transfer_in_revenue,
        sum(r.transfer_out_revenue) AS transfer_out_revenue,
        (array_agg(r.active_customers ORDER BY r.period_start DESC))[1] AS active_customers,
        sum(r.new_customers) AS new_customers,
        sum(r.reactivated_customers) AS reactivated_customers,
        sum(r.churned_customers) AS churned_customers,
        sum(r.transferred_in_customers) AS transferred_in_customers,
        sum(r.transferred_out_customers) AS transferred_out_customers
    FROM month_rows AS r
    CROSS JOIN LATERAL (
        VALUES ('quarter', date_trunc('quarter', r.period_start)::date),
               ('year', date_trunc('year', r.period_start)::date)
    ) AS p(period_type, period_start)
    JOIN long_periods AS t ON t.period_type = p.period_type AND t.period_start = p.period_start
    GROUP BY r.tenant_id, t.period_type, t.period_start, t.period_end, r.dimension, r.value
)
SELECT * FROM short_rows
UNION ALL
SELECT * FROM long_rows
