-- When each aggregate's last committed run began computing (UTC), as the pipeline recorded it in
-- the run's transaction (docs/api.md#freshness). One row per aggregate; no tenant_id.
SELECT aggregate, materialized_at
FROM aggregate_freshness
