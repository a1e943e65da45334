-- The day rows of the window, one per tenant, dimension, value and day on which the value has
-- MRR > 0 or a segment state row (docs/metrics.md#revenue_segments).
CREATE TEMP TABLE segment_day_rows ON COMMIT DROP AS
WITH days AS (
    SELECT d::date AS day
    FROM generate_series(CAST(:window_start AS date), CAST(:window_end AS date) - 1, interval '1 day') AS d
),
keys AS (
    SELECT tenant_id, dimension, value FROM segment_opening
    UNION
    SELECT tenant_id, dimension, value FROM segment_window_days
),
grid AS (
    SELECT
        k.tenant_id, k.dimension, k.value, d.day,
        coalesce(o.mrr, 0) + coalesce(sum(m.net) OVER w, 0) AS mrr,
        coalesce(o.active_customers, 0) + coalesce(sum(m.net_customers) OVER w, 0) AS active_customers,
        m.tenant_id IS NOT NULL AS has_state_row,
        m.new_revenue, m.reactivation_revenue, m.expansion_revenue, m.contraction_revenue, m.churned_revenue,
        m.transfer_in_revenue, m.transfer_out_revenue,
        m.new_customers, m.reactivated_customers, m.churned_customers,
        m.transferred_in_customers, m.transferred_out_customers
    FROM keys AS k
    CROSS JOIN days AS d
    LEFT JOIN segment_opening AS o
      ON o.tenant_id = k.tenant_id AND o.dimension = k.dimension AND o.value = k.value
    LEFT JOIN segment_window_days AS m
      ON m.tenant_id = k.tenant_id AND m.dimension = k.dimension AND m.value = k.value AND m.day = d.day
    WINDOW w AS (PARTITION BY k.tenant_id, k.dimension, k.value ORDER BY d.day)
)
SELECT
    tenant_id, 'day' AS period_type, day AS period_start, day AS period_end, dimension, value, mrr,
    coalesce(new_revenue, 0) AS new_revenue,
    coalesce(reactivation_revenue, 0) AS reactivation_revenue,
    coalesce(expansion_revenue, 0) AS expansion_revenue,
    coalesce(contraction_revenue, 0) AS contraction_revenue,
    coalesce(churned_revenue, 0) AS churned_revenue,
    coalesce(transfer_in_revenue, 0) AS transfer_in_revenue,
    coalesce(transfer_out_revenue, 0) AS transfer_out_revenue,
    -- bigint, like the sums of the longer periods: bounds are checked before the write's cast.
    CAST(active_customers AS bigint) AS active_customers,
    CAST(coalesce(new_customers, 0) AS bigint) AS new_customers,
    CAST(coalesce(reactivated_customers, 0) AS bigint) AS reactivated_customers,
    CAST(coalesce(churned_customers, 0) AS bigint) AS churned_customers,
    CAST(coalesce(transferred_in_customers, 0) AS bigint) AS transferred_in_customers,
    CAST(coalesce(transferred_out_customers, 0) AS bigint) AS transferred_out_customers
FROM grid
WHERE mrr > 0 OR has_state_row
