-- Each user's payment_completed amounts per month (docs/metrics.md#cohort-state), from the
-- window's payments (window_payments.sql). The month keeps {payment event id: amount}, so
-- re-reading a payment adds nothing; revenue is their sum. A month that already holds every
-- payment (one absorb_activity.sql just inserted, or a re-read) is left as it is.
INSERT INTO user_activity_months AS m (tenant_id, user_id, activity_month, payment_amounts, revenue)
SELECT tenant_id,
       user_id,
       activity_month,
       payment_amounts,
       (SELECT sum(a.value::numeric) FROM jsonb_each_text(payment_amounts) AS a)
FROM cohort_window_payments
ORDER BY 1, 2, 3
ON CONFLICT (tenant_id, user_id, activity_month) DO UPDATE SET
    payment_amounts = m.payment_amounts || EXCLUDED.payment_amounts,
    revenue = (SELECT sum(a.value::numeric)
               FROM jsonb_each_text(m.payment_amounts || EXCLUDED.payment_amounts) AS a)
WHERE NOT m.payment_amounts @> EXCLUDED.payment_amounts
