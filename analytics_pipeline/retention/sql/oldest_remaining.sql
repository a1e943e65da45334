-- The oldest event left after a cleanup: the oldest of each tenant, through the index.
SELECT min(oldest."timestamp")
FROM organizations AS o
CROSS JOIN LATERAL (
    SELECT e."timestamp" FROM analytics_events AS e
    WHERE e.tenant_id = o.id
    ORDER BY e."timestamp"
    LIMIT 1
) AS oldest
