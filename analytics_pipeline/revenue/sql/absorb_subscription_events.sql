-- Copy the valid subscription events of the window that the subscription history has not seen
-- ({unseen}) into subscription_events, the compact history MRR is computed from; it outlives the
-- 13-month retention of raw events. Monthly value: docs/metrics.md#monthly-value. Idempotent: an
-- event already copied is skipped. Plan and interval as the event names them, for the segments
-- (docs/metrics.md#segment-state).
INSERT INTO subscription_events
    (event_id, tenant_id, user_id, subscription_id, event_type, occurred_at, monthly_value, plan_id,
     billing_interval)
SELECT
    id,
    tenant_id,
    user_id,
    event_data ->> 'subscription_id',
    event_type,
    "timestamp",
    CASE event_data ->> 'interval'
        WHEN 'week' THEN round(analytics_amount(event_data) * 52 / 12, 2)
        WHEN 'month' THEN round(analytics_amount(event_data), 2)
        WHEN 'quarter' THEN round(analytics_amount(event_data) / 3, 2)
        WHEN 'year' THEN round(analytics_amount(event_data) / 12, 2)
    END,
    event_data ->> 'plan_id',
    event_data ->> 'interval'
FROM revenue_window_events
WHERE problem IS NULL
  AND event_type IN ('subscription_started', 'subscription_changed', 'subscription_cancelled')
  AND {unseen}
ON CONFLICT (event_id) DO NOTHING
