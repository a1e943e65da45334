-- Malformed subscription and signup events that happened in the window, per tenant, type and
-- reason, from the copies the absorbs keep (malformed_events): the events segments read.
SELECT tenant_id, event_type, problem, count(*)::int AS events
FROM malformed_events
WHERE "timestamp" >= :window_start
  AND "timestamp" < :window_end
  AND (event_type LIKE 'subscription\_%' OR event_type = 'user_signup')
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3
