-- Revenue-relevant events of the window per tenant, day, type and validity. One pass over the
-- window through the (tenant_id, "timestamp" DESC) index, tenant by tenant.
-- Malformed events (docs/events.md#malformed-events) are counted here and excluded from metrics.
CREATE TEMP TABLE revenue_event_counts ON COMMIT DROP AS
SELECT
    o.id AS tenant_id,
    e.day,
    e.event_type,
    e.problem,
    count(*) AS events,
    sum(e.amount) AS amount
FROM organizations AS o
CROSS JOIN LATERAL (
    SELECT
        ev."timestamp"::date AS day,
        ev.event_type,
        analytics_event_problem(ev.event_type, ev.event_data, ev.user_id, ev."timestamp", ev.created_at) AS problem,
        analytics_amount(ev.event_data) AS amount
    FROM analytics_events AS ev
    WHERE ev.tenant_id = o.id
      AND ev."timestamp" >= :window_start
      AND ev."timestamp" < :window_end
      AND ev.event_type IN (
          'payment_completed', 'payment_failed', 'payment_refunded',
          'subscription_started', 'subscription_changed', 'subscription_cancelled'
      )
) AS e
GROUP BY o.id, e.day, e.event_type, e.problem
