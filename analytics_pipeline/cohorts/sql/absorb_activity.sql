-- The window's user months (window_activity.sql) into user_activity_months
-- (docs/metrics.md#cohort-state), a new month with its payments of the window
-- (window_payments.sql) already in it, so that absorb_payments.sql need not rewrite it. Inserted
-- in key order: neighbouring keys land on the same index pages.
INSERT INTO user_activity_months (tenant_id, user_id, activity_month, payment_amounts, revenue)
SELECT a.tenant_id,
       a.user_id,
       a.activity_month,
       coalesce(p.payment_amounts, '{}'),
       coalesce((SELECT sum(v.value::numeric) FROM jsonb_each_text(p.payment_amounts) AS v), 0)
FROM cohort_window_activity a
LEFT JOIN cohort_window_payments p USING (tenant_id, user_id, activity_month)
ORDER BY 1, 2, 3
ON CONFLICT DO NOTHING
