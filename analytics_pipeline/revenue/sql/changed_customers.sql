-- The customers whose MRR state (customer_mrr_days) the window's subscription events can change,
-- each with the first day they change: an event changes its customer's MRR from its own day on,
-- never before (docs/metrics.md#mrr-state). Only the events the subscription history has not
-- seen ({unseen}); recomputing a customer whose events were all seen would change nothing.
CREATE TEMP TABLE revenue_changed_customers ON COMMIT DROP AS
SELECT tenant_id, user_id, min("timestamp")::date AS from_day
FROM revenue_window_events
WHERE problem IS NULL
  AND event_type IN ('subscription_started', 'subscription_changed', 'subscription_cancelled')
  AND {unseen}
GROUP BY tenant_id, user_id
