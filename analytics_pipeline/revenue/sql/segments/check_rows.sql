-- The rows this run touched that break a rule check of sql/segments/checks/, each with the
-- value's MRR and active customers at the end of the day before its period from the segment state
-- (docs/metrics.md#segment-state), which the bridges start from, and which rules it breaks: a
-- period starting in the window finds them among the levels of state_levels.sql
-- (segment_state_levels; none there is 0), one starting before it (the week, month, quarter or
-- year the window starts in) looks the value's last state row before it up. The rules are
-- evaluated here, in one pass over a backfill's million rows, and the checks name the rows that
-- break theirs; the rows that break none are not kept.
CREATE TEMP TABLE segment_check_rows ON COMMIT DROP AS
SELECT *
FROM (
    SELECT o.*,
           -- mrr_bridge (docs/metrics.md#segment-movements): MRR at the end minus the opening MRR
           -- equals the movements plus the transfers.
           o.mrr - o.opening_mrr
               <> o.new_revenue + o.reactivation_revenue + o.expansion_revenue - o.contraction_revenue
                  - o.churned_revenue + o.transfer_in_revenue - o.transfer_out_revenue AS mrr_bridge_breaks,
           -- customer_bridge (docs/metrics.md#segment-customers): active customers at the end minus
           -- the opening ones equal the flows plus the transfers.
           o.active_customers - o.opening_active_customers
               <> o.new_customers + o.reactivated_customers - o.churned_customers
                  + o.transferred_in_customers - o.transferred_out_customers AS customer_bridge_breaks,
           -- non_negative: no negative amount or count.
           least(o.mrr, o.arr, o.new_revenue, o.reactivation_revenue, o.expansion_revenue, o.contraction_revenue,
                 o.churned_revenue, o.transfer_in_revenue, o.transfer_out_revenue) < 0
           OR least(o.active_customers, o.new_customers, o.reactivated_customers, o.churned_customers,
                    o.transferred_in_customers, o.transferred_out_customers) < 0 AS negative
    FROM (
        SELECT r.id, r.mrr, r.arr, r.new_revenue, r.reactivation_revenue, r.expansion_revenue,
               r.contraction_revenue, r.churned_revenue, r.transfer_in_revenue, r.transfer_out_revenue,
               r.active_customers, r.new_customers, r.reactivated_customers, r.churned_customers,
               r.transferred_in_customers, r.transferred_out_customers,
               coalesce(l.mrr, b.mrr, 0) AS opening_mrr,
               coalesce(l.active_customers, b.active_customers, 0) AS opening_active_customers
        FROM revenue_segments AS r
        LEFT JOIN segment_state_levels AS l
          ON l.tenant_id = r.tenant_id AND l.dimension = r.dimension AND l.value = r.value AND l.day = r.period_start - 1
        LEFT JOIN LATERAL (
            SELECT s.mrr, s.active_customers FROM tenant_segment_days AS s
            WHERE r.period_start < CAST(:window_start AS date)
              AND s.tenant_id = r.tenant_id AND s.dimension = r.dimension AND s.value = r.value
              AND s.day < r.period_start
            ORDER BY s.day DESC
            LIMIT 1
        ) AS b ON true
        -- The touched periods: those starting on a touched period's first day that contain a day of the
        -- window, a filter rather than a join, which a backfill's million rows would be sorted for. A
        -- tenant held back (a value no column can hold) kept its old rows: the run wrote none.
        WHERE r.period_start = ANY (ARRAY(SELECT p.period_start FROM ({touched_periods}) AS p))
          AND r.period_start < CAST(:window_end AS date)
          AND r.period_end >= CAST(:window_start AS date)
          AND r.tenant_id NOT IN (SELECT tenant_id FROM tenants_not_written)
    ) AS o
) AS c
WHERE mrr_bridge_breaks OR customer_bridge_breaks OR negative
