-- A dry run: the number of deletable events of each tenant that has any, one tenant at a time.
-- The placeholder is the deletable events' predicate (purge.DELETABLE).
SELECT o.id AS tenant_id, deletable.n
FROM organizations AS o
CROSS JOIN LATERAL (
    SELECT count(*) AS n FROM analytics_events AS e WHERE e.tenant_id = o.id AND {deletable}
) AS deletable
WHERE deletable.n > 0
ORDER BY o.id
