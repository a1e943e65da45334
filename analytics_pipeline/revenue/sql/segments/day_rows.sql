-- The day rows of the window, one per tenant, dimension, value and day on which the value has
-- MRR > 0 or a segment state row (docs/metrics.md#revenue_segments): each state row of the window
-- with the value's MRR and active customers at the end of its day (the opening plus the day's
-- and the earlier days' net changes), and every day without one at the level it holds since the
-- row before it (or the opening), when that is > 0. The days between two state rows are generated
-- from them, not found by joining every value to every day of the window. `rolls_up` marks the
-- rows the weeks and months are summed from (period_days.sql): every state row, and of the days
-- between, the last of each span, week and month; the others have no flow and the level of the
-- next day's row, which is in the same week and month.
CREATE TEMP TABLE segment_day_rows ON COMMIT DROP AS
WITH state_days AS (
    SELECT
        m.tenant_id, m.dimension, m.value, m.day,
        coalesce(o.mrr, 0) + sum(m.net) OVER w AS mrr,
        coalesce(o.active_customers, 0) + sum(m.net_customers) OVER w AS active_customers,
        lead(m.day) OVER w AS next_day,
        m.new_revenue, m.reactivation_revenue, m.expansion_revenue, m.contraction_revenue, m.churned_revenue,
        m.transfer_in_revenue, m.transfer_out_revenue,
        m.new_customers, m.reactivated_customers, m.churned_customers,
        m.transferred_in_customers, m.transferred_out_customers
    FROM segment_window_days AS m
    LEFT JOIN segment_opening AS o
      ON o.tenant_id = m.tenant_id AND o.dimension = m.dimension AND o.value = m.value
    WINDOW w AS (PARTITION BY m.tenant_id, m.dimension, m.value ORDER BY m.day)
),
held_levels AS (
    -- The days without a state row: after each state row until the next (or the window's end),
    -- and from the window's start until the value's first state row (or the end) at the opening.
    SELECT tenant_id, dimension, value, day + 1 AS first_day,
           coalesce(next_day, CAST(:window_end AS date)) - 1 AS last_day, mrr, active_customers
    FROM state_days
    WHERE mrr > 0
    UNION ALL
    SELECT o.tenant_id, o.dimension, o.value, CAST(:window_start AS date),
           coalesce(f.first_day, CAST(:window_end AS date)) - 1, o.mrr, o.active_customers
    FROM segment_opening AS o
    LEFT JOIN (
        SELECT tenant_id, dimension, value, min(day) AS first_day
        FROM segment_window_days
        GROUP BY tenant_id, dimension, value
    ) AS f ON f.tenant_id = o.tenant_id AND f.dimension = o.dimension AND f.value = o.value
    WHERE o.mrr > 0
)
SELECT
    tenant_id, 'day' AS period_type, day AS period_start, day AS period_end, dimension, value, mrr,
    new_revenue, reactivation_revenue, expansion_revenue, contraction_revenue, churned_revenue,
    transfer_in_revenue, transfer_out_revenue,
    -- bigint, like the sums of the longer periods: bounds are checked before the write's cast.
    CAST(active_customers AS bigint) AS active_customers,
    CAST(new_customers AS bigint) AS new_customers,
    CAST(reactivated_customers AS bigint) AS reactivated_customers,
    CAST(churned_customers AS bigint) AS churned_customers,
    CAST(transferred_in_customers AS bigint) AS transferred_in_customers,
    CAST(transferred_out_customers AS bigint) AS transferred_out_customers,
    true AS rolls_up
FROM state_days
UNION ALL
SELECT
    h.tenant_id, 'day', d.day, d.day, h.dimension, h.value, h.mrr,
    0, 0, 0, 0, 0, 0, 0,
    CAST(h.active_customers AS bigint), 0, 0, 0, 0, 0,
    d.day = h.last_day OR extract(isodow FROM d.day) = 7 OR extract(day FROM d.day + 1) = 1
FROM held_levels AS h
CROSS JOIN LATERAL generate_series(0, h.last_day - h.first_day) AS n
CROSS JOIN LATERAL (SELECT h.first_day + n) AS d(day)
