-- Copy the valid subscription events created in (:since, :through] into subscription_events, the
-- compact history MRR is computed from; it outlives the 13-month retention of raw events.
-- Monthly value: docs/metrics.md#monthly-value. Idempotent: an event already copied is skipped.
INSERT INTO subscription_events
    (event_id, tenant_id, user_id, subscription_id, event_type, occurred_at, monthly_value)
SELECT
    e.id,
    e.tenant_id,
    e.user_id,
    e.event_data ->> 'subscription_id',
    e.event_type,
    e."timestamp",
    CASE e.event_data ->> 'interval'
        WHEN 'week' THEN round(analytics_amount(e.event_data) * 52 / 12, 2)
        WHEN 'month' THEN round(analytics_amount(e.event_data), 2)
        WHEN 'quarter' THEN round(analytics_amount(e.event_data) / 3, 2)
        WHEN 'year' THEN round(analytics_amount(e.event_data) / 12, 2)
    END
FROM analytics_events AS e
WHERE e.event_type IN ('subscription_started', 'subscription_changed', 'subscription_cancelled')
  AND e.created_at > :since
  AND e.created_at <= :through
  AND analytics_event_problem(e.event_type, e.event_data, e.user_id, e."timestamp", e.created_at) IS NULL
ON CONFLICT (event_id) DO NOTHING
