-- Copy the valid payment_completed, payment_failed and payment_refunded events created in
-- (:since, :through] into payment_events, the payment history revenue is computed from; it
-- outlives the 13-month retention of raw events (docs/metrics.md#payment-history). The malformed
-- ones go to malformed_events (docs/events.md#malformed-events), from the same single read.
-- Idempotent: an event already copied is skipped.
WITH window_events AS MATERIALIZED (
    SELECT e.id, e.tenant_id, e.event_type, e.event_data, e.user_id, e."timestamp",
           analytics_event_problem(e.event_type, e.event_data, e.user_id, e."timestamp", e.created_at) AS problem
    FROM analytics_events AS e
    WHERE e.event_type IN ('payment_completed', 'payment_failed', 'payment_refunded')
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
INSERT INTO payment_events (event_id, tenant_id, event_type, occurred_at, amount)
SELECT id, tenant_id, event_type, "timestamp", round(analytics_amount(event_data), 2)
FROM window_events
WHERE problem IS NULL
ON CONFLICT (event_id) DO NOTHING
