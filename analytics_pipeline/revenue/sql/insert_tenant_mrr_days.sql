-- The changed tenants' MRR days from their first changed day on: per day on which any customer's
-- MRR changed, the sums of the customers' movements and the tenant's MRR at the end of the day,
-- which is its MRR at the end of the last day before (the row kept before that day) plus the
-- running sum of the movements (the MRR bridge, docs/metrics.md#mrr-movements); likewise the
-- customer counts (docs/metrics.md#customers): a customer's day is new, a reactivation or a churn
-- exactly when that movement is non-zero (it is their MRR after or before, > 0 there), and the
-- active customers are those at the end of the last day before plus the running sum of the flows.
INSERT INTO tenant_mrr_days (
    tenant_id, day, mrr,
    new_revenue, reactivation_revenue, expansion_revenue, contraction_revenue, churned_revenue,
    active_customers, new_customers, reactivated_customers, churned_customers
)
WITH changed AS (
    SELECT tenant_id, min(from_day) AS from_day FROM revenue_changed_customers GROUP BY tenant_id
),
opening AS (
    SELECT c.tenant_id, c.from_day, coalesce(last_day.mrr, 0) AS mrr,
           coalesce(last_day.active_customers, 0) AS active_customers
    FROM changed AS c
    LEFT JOIN LATERAL (
        SELECT t.mrr, t.active_customers FROM tenant_mrr_days AS t
        WHERE t.tenant_id = c.tenant_id AND t.day < c.from_day
        ORDER BY t.day DESC
        LIMIT 1
    ) AS last_day ON true
),
days AS (
    SELECT
        m.tenant_id, m.day,
        sum(m.new_revenue) AS new_revenue,
        sum(m.reactivation_revenue) AS reactivation_revenue,
        sum(m.expansion_revenue) AS expansion_revenue,
        sum(m.contraction_revenue) AS contraction_revenue,
        sum(m.churned_revenue) AS churned_revenue,
        sum(m.new_revenue + m.reactivation_revenue + m.expansion_revenue
            - m.contraction_revenue - m.churned_revenue) AS net,
        count(*) FILTER (WHERE m.new_revenue > 0) AS new_customers,
        count(*) FILTER (WHERE m.reactivation_revenue > 0) AS reactivated_customers,
        count(*) FILTER (WHERE m.churned_revenue > 0) AS churned_customers
    FROM opening AS o
    JOIN customer_mrr_days AS m ON m.tenant_id = o.tenant_id AND m.day >= o.from_day
    GROUP BY m.tenant_id, m.day
)
SELECT
    d.tenant_id,
    d.day,
    o.mrr + sum(d.net) OVER (PARTITION BY d.tenant_id ORDER BY d.day),
    d.new_revenue, d.reactivation_revenue, d.expansion_revenue, d.contraction_revenue, d.churned_revenue,
    o.active_customers + sum(d.new_customers + d.reactivated_customers - d.churned_customers)
        OVER (PARTITION BY d.tenant_id ORDER BY d.day),
    d.new_customers, d.reactivated_customers, d.churned_customers
FROM days AS d
JOIN opening AS o USING (tenant_id)
