-- The payment and subscription events committed since the histories' last absorb ({committed}:
-- analytics_pipeline/aggregation/state.py, docs/ingestion.md), each with what is wrong
-- with it (docs/events.md#malformed-events), read once for both histories: a first backfill
-- would otherwise scan analytics_events once per history. CREATE TABLE AS, because PostgreSQL
-- reads for it in parallel and never for INSERT ... SELECT. :event_types are the types of the
-- histories being absorbed.
CREATE TEMP TABLE revenue_window_events ON COMMIT DROP AS
SELECT e.id, e.ingest_xid, e.tenant_id, e.event_type, e.event_data, e.user_id, e."timestamp", e.created_at,
       analytics_event_problem(e.event_type, e.event_data, e.user_id, e."timestamp", e.created_at) AS problem
FROM analytics_events AS e
WHERE e.event_type = ANY (CAST(:event_types AS text[]))
  AND {committed}
