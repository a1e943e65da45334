-- One batch: up to batch_size deletable events of one tenant (the placeholder is their
-- predicate, purge.DELETABLE). SKIP LOCKED: a second cleanup running at the same time takes other
-- rows instead of waiting; oldest first, so a run stopped midway still advances the oldest
-- remaining timestamp.
WITH batch AS (
    SELECT e.id
    FROM analytics_events AS e
    WHERE e.tenant_id = :tenant_id AND {deletable}
    ORDER BY e."timestamp"
    LIMIT :batch_size
    FOR UPDATE SKIP LOCKED
)
DELETE FROM analytics_events AS e
USING batch
WHERE e.id = batch.id
