-- Whether any event has a "timestamp" before the cutoff: one probe of the (tenant_id, "timestamp"
-- DESC) index per tenant (docs/operations.md#retention-of-raw-events).
SELECT EXISTS (
    SELECT 1
    FROM organizations AS o
    CROSS JOIN LATERAL (
        SELECT 1 FROM analytics_events AS e
        WHERE e.tenant_id = o.id AND e."timestamp" < :cutoff
        LIMIT 1
    ) AS expired
)
