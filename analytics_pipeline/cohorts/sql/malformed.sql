-- Malformed events that happened in the window, per tenant, type and reason: from the copies the
-- absorb keeps (malformed_events), which outlive the raw events. Any event may be a user's
-- activity, so all types count.
SELECT tenant_id, event_type, problem, count(*) AS events
FROM malformed_events
WHERE "timestamp" >= :window_start
  AND "timestamp" < :window_end
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3
