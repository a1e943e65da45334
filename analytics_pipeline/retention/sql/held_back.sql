-- The expired events the purge leaves: inserted at or after the absorbed horizon (through the
-- ingest_xid index; normally none or a few), with the range of their ids.
SELECT count(*) AS held_back, min(e.id) AS first_id, max(e.id) AS last_id
FROM analytics_events AS e
WHERE e."timestamp" < :cutoff AND e.ingest_xid >= CAST(:horizon AS xid8)
