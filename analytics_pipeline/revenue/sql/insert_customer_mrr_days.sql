-- The MRR state of each changed customer (revenue_changed_customers), from their first changed
-- day on: one row per day on which the customer's MRR changed, with their MRR at the end of the
-- day and the day's movement. Computed from the customer's whole subscription history (a
-- customer has few events), so whether they "ever had MRR before" sees every earlier day.
-- Definitions: docs/metrics.md#mrr, docs/metrics.md#mrr-movements, docs/metrics.md#mrr-state.
-- A cancellation counts on its event's day and changes that cancel out within a day leave no
-- movement: docs/metrics.md#kpi-conventions.
INSERT INTO customer_mrr_days (
    tenant_id, user_id, day, mrr,
    new_revenue, reactivation_revenue, expansion_revenue, contraction_revenue, churned_revenue
)
WITH segmented AS (
    -- Each start or cancellation opens a segment of the subscription's life.
    SELECT
        s.tenant_id, s.user_id, s.subscription_id, s.occurred_at, s.event_id, s.event_type, s.monthly_value,
        count(*) FILTER (WHERE s.event_type <> 'subscription_changed') OVER (
            PARTITION BY s.tenant_id, s.user_id, s.subscription_id ORDER BY s.occurred_at, s.event_id
        ) AS segment
    FROM subscription_events AS s
    JOIN revenue_changed_customers AS c ON c.tenant_id = s.tenant_id AND c.user_id = s.user_id
),
valued AS (
    -- In a segment opened by a start the subscription is worth its latest price; in one opened
    -- by a cancellation (or before any start) it is worth nothing.
    SELECT
        tenant_id, user_id, subscription_id, occurred_at, event_id,
        CASE WHEN first_value(event_type) OVER (
                      PARTITION BY tenant_id, user_id, subscription_id, segment
                      ORDER BY occurred_at, event_id
                  ) = 'subscription_started'
             THEN monthly_value ELSE 0 END AS value_after
    FROM segmented
),
subscription_days AS (
    -- The subscription's value at the end of each day on which it had events.
    SELECT DISTINCT ON (tenant_id, user_id, subscription_id, occurred_at::date)
        tenant_id, user_id, subscription_id, occurred_at::date AS day, value_after
    FROM valued
    ORDER BY tenant_id, user_id, subscription_id, occurred_at::date, occurred_at DESC, event_id DESC
),
customer_days AS (
    SELECT tenant_id, user_id, day, sum(delta) AS net
    FROM (
        SELECT
            tenant_id, user_id, day,
            value_after - coalesce(lag(value_after) OVER (
                PARTITION BY tenant_id, user_id, subscription_id ORDER BY day
            ), 0) AS delta
        FROM subscription_days
    ) AS deltas
    GROUP BY tenant_id, user_id, day
),
customer_mrr AS (
    SELECT
        tenant_id, user_id, day,
        sum(net) OVER (PARTITION BY tenant_id, user_id ORDER BY day) - net AS mrr_before,
        sum(net) OVER (PARTITION BY tenant_id, user_id ORDER BY day) AS mrr_after
    FROM customer_days
),
customer_history AS (
    -- Whether the customer ended any earlier day with MRR > 0: decides new vs reactivation.
    SELECT
        *,
        coalesce(bool_or(mrr_after > 0) OVER (
            PARTITION BY tenant_id, user_id ORDER BY day
            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
        ), false) AS had_mrr
    FROM customer_mrr
)
SELECT
    h.tenant_id,
    h.user_id,
    h.day,
    h.mrr_after,
    CASE WHEN mrr_before = 0 AND mrr_after > 0 AND NOT had_mrr THEN mrr_after ELSE 0 END,
    CASE WHEN mrr_before = 0 AND mrr_after > 0 AND had_mrr THEN mrr_after ELSE 0 END,
    CASE WHEN mrr_before > 0 AND mrr_after > mrr_before THEN mrr_after - mrr_before ELSE 0 END,
    CASE WHEN mrr_before > 0 AND mrr_after > 0 AND mrr_after < mrr_before THEN mrr_before - mrr_after ELSE 0 END,
    CASE WHEN mrr_before > 0 AND mrr_after = 0 THEN mrr_before ELSE 0 END
FROM customer_history AS h
JOIN revenue_changed_customers AS c ON c.tenant_id = h.tenant_id AND c.user_id = h.user_id
-- Changes that cancel out within the day are no movement and leave no row.
WHERE h.day >= c.from_day
  AND h.mrr_after <> h.mrr_before
