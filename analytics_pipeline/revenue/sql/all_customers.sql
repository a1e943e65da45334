-- Every customer of the subscription history from their first event: what the MRR state is
-- built from when it is created beside an existing history (migration 0014).
CREATE TEMP TABLE revenue_changed_customers ON COMMIT DROP AS
SELECT tenant_id, user_id, min(occurred_at)::date AS from_day
FROM subscription_events
GROUP BY tenant_id, user_id
