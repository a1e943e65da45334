-- The identity of docs/metrics.md#segments: for every tenant, touched period and dimension, the
-- values' rows add up to the revenue_aggregates row of that tenant and period, column by column
-- (0 where either has no row), and the MRR and customers transferred in equal those transferred
-- out. One row (tenant_id, which, why) per tenant, period, dimension and column that break it, a
-- tenant held back (tenants_not_written) left out. {segment_rows} is revenue_segments and
-- {revenue_rows} revenue_aggregates, or those of some tenants only (segments.py re-evaluates the
-- tenants whose revenue_aggregates rows a run brought up to date).
WITH touched AS (
    SELECT period_type, period_start FROM ({touched_periods}) AS t
),
segments AS (
    SELECT
        s.tenant_id, s.period_type, s.period_start, s.dimension,
        sum(s.mrr) AS mrr, sum(s.arr) AS arr,
        sum(s.new_revenue) AS new_revenue, sum(s.reactivation_revenue) AS reactivation_revenue,
        sum(s.expansion_revenue) AS expansion_revenue, sum(s.contraction_revenue) AS contraction_revenue,
        sum(s.churned_revenue) AS churned_revenue,
        sum(s.transfer_in_revenue) AS transfer_in_revenue, sum(s.transfer_out_revenue) AS transfer_out_revenue,
        sum(s.active_customers) AS active_customers, sum(s.new_customers) AS new_customers,
        sum(s.reactivated_customers) AS reactivated_customers, sum(s.churned_customers) AS churned_customers,
        sum(s.transferred_in_customers) AS transferred_in_customers,
        sum(s.transferred_out_customers) AS transferred_out_customers
    FROM {segment_rows} AS s
    -- The touched periods' rows: the periods starting on a touched period's first day that
    -- contain a day of the window (a filter, not a join a backfill's rows would be sorted for).
    WHERE s.period_start = ANY (ARRAY(SELECT period_start FROM touched))
      AND s.period_start < CAST(:window_end AS date)
      AND s.period_end >= CAST(:window_start AS date)
    GROUP BY s.tenant_id, s.period_type, s.period_start, s.dimension
),
totals AS (
    SELECT r.tenant_id, r.period_type, r.period_start, d.dimension, r.mrr, r.arr,
           r.new_revenue, r.reactivation_revenue, r.expansion_revenue, r.contraction_revenue,
           r.churned_revenue, r.active_customers, r.new_customers, r.reactivated_customers,
           r.churned_customers
    FROM {revenue_rows} AS r
    JOIN touched AS t ON t.period_type = r.period_type AND t.period_start = r.period_start
    CROSS JOIN (VALUES ('plan'), ('interval'), ('source')) AS d(dimension)
),
compared AS (
    SELECT tenant_id, period_type, period_start, dimension, v.column_name, v.segments, v.total
    FROM segments AS s
    FULL JOIN totals AS r USING (tenant_id, period_type, period_start, dimension)
    CROSS JOIN LATERAL (
        VALUES
            ('mrr', coalesce(s.mrr, 0), coalesce(r.mrr, 0)),
            ('arr', coalesce(s.arr, 0), coalesce(r.arr, 0)),
            ('new_revenue', coalesce(s.new_revenue, 0), coalesce(r.new_revenue, 0)),
            ('reactivation_revenue', coalesce(s.reactivation_revenue, 0), coalesce(r.reactivation_revenue, 0)),
            ('expansion_revenue', coalesce(s.expansion_revenue, 0), coalesce(r.expansion_revenue, 0)),
            ('contraction_revenue', coalesce(s.contraction_revenue, 0), coalesce(r.contraction_revenue, 0)),
            ('churned_revenue', coalesce(s.churned_revenue, 0), coalesce(r.churned_revenue, 0)),
            ('active_customers', coalesce(s.active_customers, 0), coalesce(r.active_customers, 0)),
            ('new_customers', coalesce(s.new_customers, 0), coalesce(r.new_customers, 0)),
            ('reactivated_customers', coalesce(s.reactivated_customers, 0), coalesce(r.reactivated_customers, 0)),
            ('churned_customers', coalesce(s.churned_customers, 0), coalesce(r.churned_customers, 0)),
            -- Transfers move MRR and customers between values: in and out cancel out.
            ('transfer_in_revenue', coalesce(s.transfer_in_revenue, 0), coalesce(s.transfer_out_revenue, 0)),
            ('transferred_in_customers', coalesce(s.transferred_in_customers, 0),
             coalesce(s.transferred_out_customers, 0))
    ) AS v(column_name, segments, total)
    WHERE v.segments <> v.total
)
SELECT tenant_id,
       'tenant ' || tenant_id || ', ' || period_type || ' ' || period_start || ', ' || dimension AS which,
       CASE column_name
           WHEN 'transfer_in_revenue' THEN 'transfer_in_revenue ' || segments || ' <> transfer_out_revenue ' || total
           WHEN 'transferred_in_customers' THEN 'transferred_in_customers ' || segments
                                                || ' <> transferred_out_customers ' || total
           ELSE column_name || ': the values add up to ' || segments || ', revenue_aggregates has ' || total
       END AS why
FROM compared
WHERE tenant_id NOT IN (SELECT tenant_id FROM tenants_not_written)
