-- Tournaments created in the period, by format. The aggregates keep only the most popular
-- format, so this counts the raw events of the period (one tenant's, a few hundred rows at most),
-- skipping malformed ones as every metric does (docs/events.md).
SELECT e.event_data ->> 'format' AS format,
       count(DISTINCT e.event_data ->> 'tournament_id') AS tournaments
FROM analytics_events AS e
WHERE e.tenant_id = :tenant_id
  AND e.event_type = 'tournament_created'
  AND e."timestamp" >= :start_at AND e."timestamp" < :end_at
  AND analytics_event_problem(e.event_type, e.event_data, e.user_id, e."timestamp", e.created_at) IS NULL
GROUP BY 1
ORDER BY 2 DESC, 1
