-- The tenants that have a deletable event: one index probe each. The placeholder is the
-- deletable events' predicate (purge.DELETABLE).
SELECT o.id AS tenant_id
FROM organizations AS o
CROSS JOIN LATERAL (
    SELECT 1 FROM analytics_events AS e WHERE e.tenant_id = o.id AND {deletable} LIMIT 1
) AS deletable
ORDER BY o.id
