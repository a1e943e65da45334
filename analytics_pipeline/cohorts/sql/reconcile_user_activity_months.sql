-- Reconciliation of user_activity_months (docs/ingestion.md#reconciliation): per tenant and day,
-- the events committed before the state's last absorb ({absorbed}) that are still in
-- analytics_events, against those the state holds (docs/metrics.md#cohort-state): a malformed event
-- of any type by its copy in malformed_events, any other event of a user by its user's month, a
-- payment_completed also by its amount in that month's payment_amounts. Events without a user are
-- no one's activity.
SELECT e.tenant_id,
       e."timestamp"::date AS day,
       count(*) AS raw_events,
       count(*) FILTER (WHERE m.event_id IS NOT NULL OR a.user_id IS NOT NULL) AS in_state
FROM analytics_events AS e
LEFT JOIN malformed_events AS m ON m.event_id = e.id
LEFT JOIN user_activity_months AS a
       ON a.tenant_id = e.tenant_id AND a.user_id = e.user_id
      AND a.activity_month = date_trunc('month', e."timestamp")::date
      AND (e.event_type <> 'payment_completed' OR a.payment_amounts ? e.id)
WHERE {absorbed}
  AND (e.user_id <> '' OR m.event_id IS NOT NULL)
GROUP BY 1, 2
HAVING count(*) <> count(*) FILTER (WHERE m.event_id IS NOT NULL OR a.user_id IS NOT NULL)
ORDER BY 1, 2
