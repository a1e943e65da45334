-- The rows of the touched periods of the given levels from their rows one level down (days for
-- weeks and months, months for quarters and years; docs/metrics.md#periods): flows are the sums,
-- mrr and active_customers the value's last row's. Each row's periods are computed from it, not
-- joined by range. The last row is the greatest [day number, mrr, active_customers] array, a
-- plain aggregate, so that the rows are grouped by hashing instead of sorted.
SELECT
    tenant_id, period_type, period_start, period_end, dimension, value,
    last_row[2] AS mrr,
    new_revenue, reactivation_revenue, expansion_revenue, contraction_revenue, churned_revenue,
    transfer_in_revenue, transfer_out_revenue,
    CAST(last_row[3] AS bigint) AS active_customers,
    new_customers, reactivated_customers, churned_customers, transferred_in_customers, transferred_out_customers
FROM (
    SELECT
        r.tenant_id, r.level_type AS period_type, r.level_start AS period_start, r.level_end AS period_end,
        r.dimension, r.value,
        max(ARRAY[CAST(r.period_start - DATE '2000-01-01' AS numeric), r.mrr, r.active_customers]) AS last_row,
        sum(r.new_revenue) AS new_revenue,
        sum(r.reactivation_revenue) AS reactivation_revenue,
        sum(r.expansion_revenue) AS expansion_revenue,
        sum(r.contraction_revenue) AS contraction_revenue,
        sum(r.churned_revenue) AS churned_revenue,
        sum(r.transfer_in_revenue) AS transfer_in_revenue,
        sum(r.transfer_out_revenue) AS transfer_out_revenue,
        sum(r.new_customers) AS new_customers,
        sum(r.reactivated_customers) AS reactivated_customers,
        sum(r.churned_customers) AS churned_customers,
        sum(r.transferred_in_customers) AS transferred_in_customers,
        sum(r.transferred_out_customers) AS transferred_out_customers
    FROM (
        -- Each row in its period of each level, which the window touches when it contains one of
        -- the window's days; period_end as in the touched periods (docs/metrics.md#periods).
        SELECT r.*, p.level_type, p.level_start,
               CAST(p.level_start + p.length - interval '1 day' AS date) AS level_end
        FROM ({rows}) AS r
        CROSS JOIN unnest(CAST(:levels AS text[])) AS level
        CROSS JOIN LATERAL (
            SELECT level, date_trunc(level, CAST(r.period_start AS timestamp))::date,
                   CASE level WHEN 'week' THEN interval '7 days' WHEN 'month' THEN interval '1 month'
                              WHEN 'quarter' THEN interval '3 months' ELSE interval '1 year' END
        ) AS p(level_type, level_start, length)
    ) AS r
    WHERE r.level_start < CAST(:window_end AS date)
      AND r.level_end >= CAST(:window_start AS date)
    GROUP BY r.tenant_id, r.level_type, r.level_start, r.level_end, r.dimension, r.value
) AS periods
