-- Copy the valid subscription events created in (:since, :through] into subscription_events, the
-- compact history MRR is computed from; it outlives the 13-month retention of raw events.
-- Monthly value: docs/metrics.md#monthly-value. The malformed ones go to malformed_events
-- (docs/events.md#malformed-events), from the same single read. Idempotent: an event already
-- copied is skipped.
WITH window_events AS MATERIALIZED (
    SELECT e.id, e.tenant_id, e.event_type, e.event_data, e.user_id, e."timestamp",
           analytics_event_problem(e.event_type, e.event_data, e.user_id, e."timestamp", e.created_at) AS problem
    FROM analytics_events AS e
    WHERE e.event_type IN ('subscription_started', 'subscription_changed', 'subscription_cancelled')
      AND e.created_at > :since
      AND e.created_at <= :through
),
malformed AS (
    INSERT INTO malformed_events (event_id, tenant_id, event_type, event_data, user_id, "timestamp", problem)
    SELECT id, tenant_id, event_type, event_data, user_id, "timestamp", problem
    FROM window_events
    WHERE problem IS NOT NULL
    ON CONFLICT (event_id) DO NOTHING
)
INSERT INTO subscription_events
    (event_id, tenant_id, user_id, subscription_id, event_type, occurred_at, monthly_value)
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
    END
FROM window_events
WHERE problem IS NULL
ON CONFLICT (event_id) DO NOTHING
