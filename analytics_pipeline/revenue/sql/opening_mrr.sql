-- Each tenant's MRR and active customers at the end of the day before the window: its last MRR
-- day before the window (docs/metrics.md#mrr-state), one index lookup per tenant. Tenants without
-- MRR (hence without active customers) are left out.
CREATE TEMP TABLE revenue_opening_mrr ON COMMIT DROP AS
SELECT o.id AS tenant_id, last_day.mrr, last_day.active_customers
FROM organizations AS o
CROSS JOIN LATERAL (
    SELECT t.mrr, t.active_customers FROM tenant_mrr_days AS t
    WHERE t.tenant_id = o.id AND t.day < :window_start
    ORDER BY t.day DESC
    LIMIT 1
) AS last_day
WHERE last_day.mrr <> 0
