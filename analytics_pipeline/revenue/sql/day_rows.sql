-- The day rows of the window, one per tenant and day that has MRR > 0, a movement, or a payment
-- or refund (docs/metrics.md#revenue_aggregates).
CREATE TEMP TABLE revenue_day_rows ON COMMIT DROP AS
WITH days AS (
    SELECT d::date AS day
    FROM generate_series(CAST(:window_start AS date), CAST(:window_end AS date) - 1, interval '1 day') AS d
),
payments AS (
    SELECT * FROM revenue_payment_days
),
opening AS (
    -- MRR and active customers at the end of the day before the window.
    SELECT tenant_id, mrr, active_customers FROM revenue_opening_mrr
),
tenants AS (
    SELECT tenant_id FROM opening
    UNION
    SELECT tenant_id FROM revenue_mrr_days
    UNION
    SELECT tenant_id FROM payments
),
grid AS (
    SELECT
        t.tenant_id,
        d.day,
        coalesce(o.mrr, 0)
            + coalesce(sum(m.net) OVER (PARTITION BY t.tenant_id ORDER BY d.day), 0) AS mrr,
        coalesce(o.active_customers, 0)
            + coalesce(sum(m.net_customers) OVER (PARTITION BY t.tenant_id ORDER BY d.day), 0)
            AS active_customers
    FROM tenants AS t
    CROSS JOIN days AS d
    LEFT JOIN opening AS o ON o.tenant_id = t.tenant_id
    LEFT JOIN revenue_mrr_days AS m ON m.tenant_id = t.tenant_id AND m.day = d.day
)
SELECT
    g.tenant_id,
    'day' AS period_type,
    g.day AS period_start,
    g.day AS period_end,
    g.mrr,
    coalesce(m.new_revenue, 0) AS new_revenue,
    coalesce(m.reactivation_revenue, 0) AS reactivation_revenue,
    coalesce(m.expansion_revenue, 0) AS expansion_revenue,
    coalesce(m.contraction_revenue, 0) AS contraction_revenue,
    coalesce(m.churned_revenue, 0) AS churned_revenue,
    coalesce(p.total_revenue, 0) AS total_revenue,
    coalesce(p.payment_count, 0) AS payment_count,
    coalesce(p.payment_success_count, 0) AS payment_success_count,
    coalesce(p.refund_count, 0) AS refund_count,
    coalesce(p.refund_amount, 0) AS refund_amount,
    g.active_customers,
    coalesce(m.new_customers, 0) AS new_customers,
    coalesce(m.reactivated_customers, 0) AS reactivated_customers,
    coalesce(m.churned_customers, 0) AS churned_customers,
    -- Month rows only (docs/metrics.md#ttm-nrr).
    CAST(NULL AS numeric) AS ttm_cohort_mrr_before,
    CAST(NULL AS numeric) AS ttm_cohort_mrr,
    CAST(NULL AS numeric) AS ttm_cohort_retained_mrr
FROM grid AS g
LEFT JOIN revenue_mrr_days AS m ON m.tenant_id = g.tenant_id AND m.day = g.day
LEFT JOIN payments AS p ON p.tenant_id = g.tenant_id AND p.day = g.day
-- A day of revenue_mrr_days is one on which some customer's MRR changed: a movement.
WHERE g.mrr > 0 OR m.tenant_id IS NOT NULL OR p.tenant_id IS NOT NULL
