-- Copy the valid payment_completed, payment_failed and payment_refunded events of the window
-- that the payment history has not seen ({unseen}) into payment_events, the payment history
-- revenue is computed from; it outlives the 13-month retention of raw events
-- (docs/metrics.md#payment-history). Idempotent: an event already copied is skipped.
INSERT INTO payment_events (event_id, tenant_id, event_type, occurred_at, amount)
SELECT id, tenant_id, event_type, "timestamp", round(analytics_amount(event_data), 2)
FROM revenue_window_events
WHERE problem IS NULL
  AND event_type IN ('payment_completed', 'payment_failed', 'payment_refunded')
  AND {unseen}
ON CONFLICT (event_id) DO NOTHING
