-- The changed tenants' segment days from their first changed day on: per dimension, value and day
-- with a customer row, the sums of the customers' movements, transfers and flows, and the
-- value's MRR and active customers at the end of the day, which are those of the value's last
-- row before that day plus the running sums (the bridges of docs/metrics.md#segment-movements
-- and docs/metrics.md#segment-customers). docs/metrics.md#segment-state.
INSERT INTO tenant_segment_days (
    tenant_id, dimension, value, day, mrr,
    new_revenue, reactivation_revenue, expansion_revenue, contraction_revenue, churned_revenue,
    transfer_in_revenue, transfer_out_revenue,
    active_customers, new_customers, reactivated_customers, churned_customers,
    transferred_in_customers, transferred_out_customers
)
WITH changed AS (
    SELECT tenant_id, min(from_day) AS from_day FROM revenue_segment_changed_customers GROUP BY tenant_id
),
days AS (
    SELECT
        m.tenant_id, m.dimension, m.value, m.day, c.from_day,
        sum(m.new_revenue) AS new_revenue,
        sum(m.reactivation_revenue) AS reactivation_revenue,
        sum(m.expansion_revenue) AS expansion_revenue,
        sum(m.contraction_revenue) AS contraction_revenue,
        sum(m.churned_revenue) AS churned_revenue,
        sum(m.transfer_in_revenue) AS transfer_in_revenue,
        sum(m.transfer_out_revenue) AS transfer_out_revenue,
        sum(m.new_revenue + m.reactivation_revenue + m.expansion_revenue - m.contraction_revenue
            - m.churned_revenue + m.transfer_in_revenue - m.transfer_out_revenue) AS net,
        sum(m.new_customers) AS new_customers,
        sum(m.reactivated_customers) AS reactivated_customers,
        sum(m.churned_customers) AS churned_customers,
        sum(m.transferred_in_customers) AS transferred_in_customers,
        sum(m.transferred_out_customers) AS transferred_out_customers
    FROM changed AS c
    JOIN customer_segment_days AS m ON m.tenant_id = c.tenant_id AND m.day >= c.from_day
    GROUP BY m.tenant_id, m.dimension, m.value, m.day, c.from_day
),
opening AS (
    SELECT k.tenant_id, k.dimension, k.value,
           coalesce(last_day.mrr, 0) AS mrr, coalesce(last_day.active_customers, 0) AS active_customers
    FROM (SELECT DISTINCT tenant_id, dimension, value, from_day FROM days) AS k
    LEFT JOIN LATERAL (
        SELECT t.mrr, t.active_customers FROM tenant_segment_days AS t
        WHERE t.tenant_id = k.tenant_id AND t.dimension = k.dimension AND t.value = k.value
          AND t.day < k.from_day
        ORDER BY t.day DESC
        LIMIT 1
    ) AS last_day ON true
)
SELECT
    d.tenant_id, d.dimension, d.value, d.day,
    o.mrr + sum(d.net) OVER w,
    d.new_revenue, d.reactivation_revenue, d.expansion_revenue, d.contraction_revenue, d.churned_revenue,
    d.transfer_in_revenue, d.transfer_out_revenue,
    o.active_customers + sum(d.new_customers + d.reactivated_customers - d.churned_customers
                             + d.transferred_in_customers - d.transferred_out_customers) OVER w,
    d.new_customers, d.reactivated_customers, d.churned_customers,
    d.transferred_in_customers, d.transferred_out_customers
FROM days AS d
JOIN opening AS o ON o.tenant_id = d.tenant_id AND o.dimension = d.dimension AND o.value = d.value
WINDOW w AS (PARTITION BY d.tenant_id, d.dimension, d.value ORDER BY d.day)
