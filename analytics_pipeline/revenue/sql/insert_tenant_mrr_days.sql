-- The changed tenants' MRR days from their first changed day on: per day on which any customer's
-- MRR changed, the sums of the customers' movements and the tenant's MRR at the end of the day,
-- which is its MRR at the end of the last day before (the row kept before that day) plus the
-- running sum of the movements (the MRR bridge, docs/metrics.md#mrr-movements).
INSERT INTO tenant_mrr_days (
    tenant_id, day, mrr,
    new_revenue, reactivation_revenue, expansion_revenue, contraction_revenue, churned_revenue
)
WITH changed AS (
    SELECT tenant_id, min(from_day) AS from_day FROM revenue_changed_customers GROUP BY tenant_id
),
opening AS (
    SELECT c.tenant_id, c.from_day, coalesce((
        SELECT t.mrr FROM tenant_mrr_days AS t
        WHERE t.tenant_id = c.tenant_id AND t.day < c.from_day
        ORDER BY t.day DESC
        LIMIT 1
    ), 0) AS mrr
    FROM changed AS c
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
            - m.contraction_revenue - m.churned_revenue) AS net
    FROM opening AS o
    JOIN customer_mrr_days AS m ON m.tenant_id = o.tenant_id AND m.day >= o.from_day
    GROUP BY m.tenant_id, m.day
)
SELECT
    d.tenant_id,
    d.day,
    o.mrr + sum(d.net) OVER (PARTITION BY d.tenant_id ORDER BY d.day),
    d.new_revenue, d.reactivation_revenue, d.expansion_revenue, d.contraction_revenue, d.churned_revenue
FROM days AS d
JOIN opening AS o USING (tenant_id)
