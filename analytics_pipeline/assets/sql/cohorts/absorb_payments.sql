-- Each user's payment_completed amounts per month (docs/metrics.md#cohort-state). The month keeps
-- {payment event id: amount}, so re-reading a payment adds nothing; revenue is their sum.
WITH paid AS (
    SELECT e.tenant_id,
           e.user_id,
           date_trunc('month', e."timestamp")::date AS activity_month,
           jsonb_object_agg(e.id, analytics_amount(e.event_data)) AS payment_amounts
    FROM analytics_events e
    WHERE e.created_at > :since
      AND e.created_at <= :through
      AND e.event_type = 'payment_completed'
      AND e.user_id <> ''
      AND analytics_event_problem(e.event_type, e.event_data, e.user_id) IS NULL
    GROUP BY 1, 2, 3
)
INSERT INTO user_activity_months AS m (tenant_id, user_id, activity_month, payment_amounts, revenue)
SELECT tenant_id,
       user_id,
       activity_month,
       payment_amounts,
       (SELECT sum(a.value::numeric) FROM jsonb_each_text(payment_amounts) AS a)
FROM paid
ON CONFLICT (tenant_id, user_id, activity_month) DO UPDATE SET
    payment_amounts = m.payment_amounts || EXCLUDED.payment_amounts,
    revenue = (SELECT sum(a.value::numeric)
               FROM jsonb_each_text(m.payment_amounts || EXCLUDED.payment_amounts) AS a)
