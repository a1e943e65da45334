-- Per tenant and day on which any customer's MRR changed: the net change and its movements,
-- over the whole subscription history up to :window_end.
-- Definitions: docs/metrics.md#mrr and docs/metrics.md#mrr-movements.
CREATE TEMP TABLE revenue_mrr_days ON COMMIT DROP AS
WITH segmented AS (
    -- Each start or cancellation opens a segment of the subscription's life.
    SELECT
        tenant_id, user_id, subscription_id, occurred_at, event_id, event_type, monthly_value,
        count(*) FILTER (WHERE event_type <> 'subscription_changed') OVER (
            PARTITION BY tenant_id, user_id, subscription_id ORDER BY occurred_at, event_id
        ) AS segment
    FROM subscription_events
    WHERE occurred_at < :window_end
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
        tenant_id, user_id, day, net,
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
    tenant_id,
    day,
    sum(net) AS net,
    sum(CASE WHEN mrr_before = 0 AND mrr_after > 0 AND NOT had_mrr THEN mrr_after ELSE 0 END) AS new_revenue,
    sum(CASE WHEN mrr_before = 0 AND mrr_after > 0 AND had_mrr THEN mrr_after ELSE 0 END) AS reactivation_revenue,
    sum(CASE WHEN mrr_before > 0 AND mrr_after > mrr_before THEN mrr_after - mrr_before ELSE 0 END) AS expansion_revenue,
    sum(CASE WHEN mrr_before > 0 AND mrr_after > 0 AND mrr_after < mrr_before
             THEN mrr_before - mrr_after ELSE 0 END) AS contraction_revenue,
    sum(CASE WHEN mrr_before > 0 AND mrr_after = 0 THEN mrr_before ELSE 0 END) AS churned_revenue,
    bool_or(mrr_after <> mrr_before) AS has_movement
FROM customer_history
GROUP BY tenant_id, day
