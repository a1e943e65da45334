-- The first valid user_signup of each customer among the window's events that the source state
-- has not seen ({unseen}), where it is earlier than the one customer_sources holds (or it holds
-- none), with whether the customer's source changes (docs/metrics.md#segment-state). A source is
-- a JSON string of 1 to 255 characters; anything else, or none, counts as `(none)`
-- (docs/metrics.md#segments).
CREATE TEMP TABLE revenue_window_signups ON COMMIT DROP AS
WITH firsts AS (
    SELECT DISTINCT ON (tenant_id, user_id)
        tenant_id, user_id, id AS event_id, "timestamp" AS signed_up_at,
        CASE WHEN jsonb_typeof(event_data -> 'source') = 'string'
                  AND length(event_data ->> 'source') BETWEEN 1 AND 255
             THEN event_data ->> 'source' ELSE '(none)' END AS source
    FROM revenue_window_events
    WHERE problem IS NULL
      AND event_type = 'user_signup'
      AND {unseen}
    ORDER BY tenant_id, user_id, "timestamp", id
)
SELECT f.*, f.source IS DISTINCT FROM coalesce(s.source, '(none)') AS source_changed
FROM firsts AS f
LEFT JOIN customer_sources AS s ON s.tenant_id = f.tenant_id AND s.user_id = f.user_id
WHERE s.user_id IS NULL OR (f.signed_up_at, f.event_id) < (s.signed_up_at, s.event_id)
