-- Payments, failed payments and refunds of the window per tenant and day, from the payment
-- history (payment_events), never from raw events (docs/metrics.md#payments).
CREATE TEMP TABLE revenue_payment_days ON COMMIT DROP AS
SELECT
    tenant_id,
    occurred_at::date AS day,
    coalesce(sum(amount) FILTER (WHERE event_type = 'payment_completed'), 0) AS total_revenue,
    count(*) FILTER (WHERE event_type IN ('payment_completed', 'payment_failed')) AS payment_count,
    count(*) FILTER (WHERE event_type = 'payment_completed') AS payment_success_count,
    count(*) FILTER (WHERE event_type = 'payment_refunded') AS refund_count,
    coalesce(sum(amount) FILTER (WHERE event_type = 'payment_refunded'), 0) AS refund_amount
FROM payment_events
WHERE occurred_at >= :window_start
  AND occurred_at < :window_end
GROUP BY tenant_id, occurred_at::date
