-- The segment state of each changed customer (revenue_segment_changed_customers) from their first
-- changed day on: per dimension, value and day on which the customer's MRR in the value, or the
-- value they count in, changed, their MRR in it at the end of the day, the day's movements and
-- transfers attributed to it, and the customer flows. Computed from the customer's whole
-- subscription history, as their MRR state is (insert_customer_mrr_days.sql), so that summed over
-- the values of a dimension every movement is the customer's. Definitions: docs/metrics.md#segments,
-- docs/metrics.md#segment-movements (the plan-change convention), docs/metrics.md#segment-customers,
-- docs/metrics.md#segment-state.
INSERT INTO customer_segment_days (
    tenant_id, user_id, dimension, value, day, mrr,
    new_revenue, reactivation_revenue, expansion_revenue, contraction_revenue, churned_revenue,
    transfer_in_revenue, transfer_out_revenue,
    active_customers, new_customers, reactivated_customers, churned_customers,
    transferred_in_customers, transferred_out_customers
)
WITH segmented AS (
    -- Each start or cancellation opens a segment of the subscription's life (as for the MRR state).
    SELECT
        s.tenant_id, s.user_id, s.subscription_id, s.occurred_at, s.event_id, s.event_type, s.monthly_value,
        s.plan_id, s.billing_interval,
        count(*) FILTER (WHERE s.event_type <> 'subscription_changed') OVER (
            PARTITION BY s.tenant_id, s.user_id, s.subscription_id ORDER BY s.occurred_at, s.event_id
        ) AS segment
    FROM subscription_events AS s
    JOIN revenue_segment_changed_customers AS c ON c.tenant_id = s.tenant_id AND c.user_id = s.user_id
),
valued AS (
    -- The subscription's value as for the MRR state; its plan and interval are the latest named in
    -- the segment (a change without plan_id keeps the plan).
    SELECT
        tenant_id, user_id, subscription_id, occurred_at, event_id,
        CASE WHEN first_value(event_type) OVER w = 'subscription_started' THEN monthly_value ELSE 0 END
            AS value_after,
        array_agg(plan_id) FILTER (WHERE plan_id IS NOT NULL) OVER w AS plans,
        array_agg(billing_interval) FILTER (WHERE billing_interval IS NOT NULL) OVER w AS intervals
    FROM segmented
    WINDOW w AS (PARTITION BY tenant_id, user_id, subscription_id, segment ORDER BY occurred_at, event_id)
),
subscription_days AS (
    -- The subscription's value, plan and interval at the end of each day on which it had events.
    SELECT DISTINCT ON (tenant_id, user_id, subscription_id, occurred_at::date)
        tenant_id, user_id, subscription_id, occurred_at::date AS day, value_after,
        coalesce(plans[cardinality(plans)], '(none)') AS plan,
        coalesce(intervals[cardinality(intervals)], '(none)') AS billing_interval
    FROM valued
    ORDER BY tenant_id, user_id, subscription_id, occurred_at::date, occurred_at DESC, event_id DESC
),
held AS (
    -- What each subscription holds in each dimension at the end of each of its days; all of a
    -- customer's MRR is in their source.
    SELECT d.tenant_id, d.user_id, d.subscription_id, d.day, v.dimension, v.value, d.value_after AS amount
    FROM subscription_days AS d
    LEFT JOIN customer_sources AS cs ON cs.tenant_id = d.tenant_id AND cs.user_id = d.user_id
    CROSS JOIN LATERAL (
        VALUES ('plan', d.plan), ('interval', d.billing_interval), ('source', coalesce(cs.source, '(none)'))
    ) AS v(dimension, value)
),
deltas AS (
    -- Per customer, dimension, value and day: what their subscriptions put in, less what they held
    -- there until then.
    SELECT tenant_id, user_id, day, dimension, value, sum(amount) AS delta
    FROM (
        SELECT tenant_id, user_id, day, dimension, value, amount FROM held
        UNION ALL
        SELECT tenant_id, user_id,
               lead(day) OVER (PARTITION BY tenant_id, user_id, subscription_id, dimension ORDER BY day),
               dimension, value, -amount
        FROM held
    ) AS moves
    WHERE day IS NOT NULL
    GROUP BY tenant_id, user_id, day, dimension, value
),
grid AS (
    -- Every value the customer ever held, on every day on which any of their subscriptions changed.
    SELECT
        v.tenant_id, v.user_id, d.day, v.dimension, v.value,
        coalesce(x.delta, 0) AS delta,
        sum(coalesce(x.delta, 0)) OVER (
            PARTITION BY v.tenant_id, v.user_id, v.dimension, v.value ORDER BY d.day
        ) AS mrr_after
    FROM (SELECT DISTINCT tenant_id, user_id, dimension, value FROM deltas) AS v
    JOIN (SELECT DISTINCT tenant_id, user_id, day FROM deltas) AS d
      ON d.tenant_id = v.tenant_id AND d.user_id = v.user_id
    LEFT JOIN deltas AS x
      ON x.tenant_id = v.tenant_id AND x.user_id = v.user_id AND x.day = d.day
     AND x.dimension = v.dimension AND x.value = v.value
),
totals AS (
    -- The customer's MRR before and after the day (the same in every dimension), and the value
    -- they count in before and after it: the one holding most of their MRR, ties to the first
    -- value in text order.
    SELECT
        g.*,
        g.mrr_after - g.delta AS mrr_before,
        sum(g.mrr_after) OVER c AS customer_after,
        sum(g.mrr_after - g.delta) OVER c AS customer_before,
        first_value(g.value) OVER (c ORDER BY g.mrr_after DESC, g.value) AS counted_after,
        first_value(g.value) OVER (c ORDER BY g.mrr_after - g.delta DESC, g.value) AS counted_before
    FROM grid AS g
    WINDOW c AS (PARTITION BY g.tenant_id, g.user_id, g.day, g.dimension)
),
ranked AS (
    -- The customer's expansion fills the values that gained, largest gain first; their
    -- contraction the values that lost, largest loss first. What is left is a transfer. Whether
    -- the customer ended any earlier day with MRR > 0 decides new vs reactivation: every value of
    -- the grid has a row on each of the customer's days, so its own earlier rows tell.
    SELECT
        t.*,
        t.customer_after - t.customer_before AS net,
        coalesce(bool_or(t.customer_after > 0) OVER (
            PARTITION BY t.tenant_id, t.user_id, t.dimension, t.value ORDER BY t.day
            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
        ), false) AS had_mrr,
        coalesce(sum(greatest(t.delta, 0)) OVER (
            PARTITION BY t.tenant_id, t.user_id, t.day, t.dimension ORDER BY t.delta DESC, t.value
            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
        ), 0) AS gained_before,
        coalesce(sum(greatest(-t.delta, 0)) OVER (
            PARTITION BY t.tenant_id, t.user_id, t.day, t.dimension ORDER BY t.delta, t.value
            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
        ), 0) AS lost_before
    FROM totals AS t
),
moved AS (
    SELECT
        r.*,
        CASE WHEN customer_before > 0 AND net > 0 AND delta > 0
             THEN least(delta, greatest(net - gained_before, 0)) ELSE 0 END AS expansion,
        CASE WHEN customer_after > 0 AND net < 0 AND delta < 0
             THEN least(-delta, greatest(-net - lost_before, 0)) ELSE 0 END AS contraction,
        customer_after > 0 AND value = counted_after AS counts_after,
        customer_before > 0 AND value = counted_before AS counts_before
    FROM ranked AS r
)
SELECT
    m.tenant_id, m.user_id, m.dimension, m.value, m.day, m.mrr_after,
    CASE WHEN customer_before = 0 AND customer_after > 0 AND NOT had_mrr THEN mrr_after ELSE 0 END,
    CASE WHEN customer_before = 0 AND customer_after > 0 AND had_mrr THEN mrr_after ELSE 0 END,
    expansion,
    contraction,
    CASE WHEN customer_before > 0 AND customer_after = 0 THEN mrr_before ELSE 0 END,
    CASE WHEN customer_before > 0 AND customer_after > 0 AND delta > 0 THEN delta - expansion ELSE 0 END,
    CASE WHEN customer_before > 0 AND customer_after > 0 AND delta < 0 THEN -delta - contraction ELSE 0 END,
    counts_after::int,
    (customer_before = 0 AND counts_after AND NOT had_mrr)::int,
    (customer_before = 0 AND counts_after AND had_mrr)::int,
    (customer_after = 0 AND counts_before)::int,
    (customer_before > 0 AND counts_after AND NOT counts_before)::int,
    (customer_after > 0 AND counts_before AND NOT counts_after)::int
FROM moved AS m
JOIN revenue_segment_changed_customers AS c ON c.tenant_id = m.tenant_id AND c.user_id = m.user_id
-- A value whose MRR and count did not change that day has no row; changes that cancel out within
-- the day are no movement (docs/metrics.md#kpi-conventions).
WHERE m.day >= c.from_day
  AND (m.delta <> 0 OR m.counts_after <> m.counts_before)
