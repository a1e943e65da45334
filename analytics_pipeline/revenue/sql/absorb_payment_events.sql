-- Copy the valid payment_completed, payment_failed and payment_refunded events created in
-- (:since, :through] into payment_events, the payment history revenue is computed from; it
-- outlives the 13-month retention of raw events (docs/metrics.md#payment-history). Idempotent:
-- an event already copied is skipped.
INSERT INTO payment_events (event_id, tenant_id, event_type, occurred_at, amount)
SELECT e.id, e.tenant_id, e.event_type, e."timestamp", round(analytics_amount(e.event_data), 2)
FROM analytics_events AS e
WHERE e.event_type IN ('payment_completed', 'payment_failed', 'payment_refunded')
  AND e.created_at > :since
  AND e.created_at <= :through
  AND analytics_event_problem(e.event_type, e.event_data, e.user_id) IS NULL
ON CONFLICT (event_id) DO NOTHING
