-- The customers whose segment state the absorb can change, each from the first day it changes
-- (docs/metrics.md#segment-state): those whose MRR state it recomputes (revenue_changed_customers),
-- from the same day, and those whose source changed, from their first subscription event, since
-- the source holds all their MRR.
CREATE TEMP TABLE revenue_segment_changed_customers ON COMMIT DROP AS
SELECT tenant_id, user_id, min(from_day) AS from_day
FROM (
    SELECT tenant_id, user_id, from_day FROM revenue_changed_customers
    UNION ALL
    SELECT s.tenant_id, s.user_id, min(s.occurred_at)::date
    FROM revenue_window_signups AS w
    JOIN subscription_events AS s ON s.tenant_id = w.tenant_id AND s.user_id = w.user_id
    WHERE w.source_changed
    GROUP BY s.tenant_id, s.user_id
) AS changed
GROUP BY tenant_id, user_id
