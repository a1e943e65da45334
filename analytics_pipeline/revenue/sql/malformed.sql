-- Malformed payment and subscription events that happened in the window, per tenant, type and
-- reason: from the copies the absorbs keep (malformed_events), which outlive the raw events.
SELECT tenant_id, event_type, problem, count(*)::int AS events
FROM malformed_events
WHERE "timestamp" >= :window_start
  AND "timestamp" < :window_end
  AND (event_type LIKE 'payment\_%' OR event_type LIKE 'subscription\_%')
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3
