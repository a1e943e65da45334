-- Each user's payment_completed amounts per month (docs/metrics.md#cohort-state). The ledger's key
-- is the event id, and only payments inserted now are added, so re-reading a payment adds nothing.
WITH paid AS (
    INSERT INTO user_payments (event_id, tenant_id, user_id, paid_month, amount)
    SELECT e.id, e.tenant_id, e.user_id, date_trunc('month', e."timestamp")::date,
           analytics_amount(e.event_data)
    FROM analytics_events e
    WHERE e.created_at > :since
      AND e.created_at <= :through
      AND e.event_type = 'payment_completed'
      AND e.user_id <> ''
      AND analytics_event_problem(e.event_type, e.event_data, e.user_id) IS NULL
    ON CONFLICT (event_id) DO NOTHING
    RETURNING tenant_id, user_id, paid_month, amount
),
per_month AS (
    SELECT tenant_id, user_id, paid_month, sum(amount) AS amount
    FROM paid
    GROUP BY tenant_id, user_id, paid_month
)
INSERT INTO user_activity_months AS a (tenant_id, user_id, activity_month, revenue)
SELECT tenant_id, user_id, paid_month, amount
FROM per_month
ON CONFLICT (tenant_id, user_id, activity_month) DO UPDATE SET
    revenue = a.revenue + EXCLUDED.revenue
