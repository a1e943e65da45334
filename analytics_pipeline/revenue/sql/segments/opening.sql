-- Each tenant's values with MRR or active customers at the end of the day before the window: the
-- value's last segment state row before it (docs/metrics.md#segment-state), read backwards along
-- the primary key.
CREATE TEMP TABLE segment_opening ON COMMIT DROP AS
SELECT tenant_id, dimension, value, mrr, active_customers
FROM (
    SELECT DISTINCT ON (tenant_id, dimension, value) tenant_id, dimension, value, mrr, active_customers
    FROM tenant_segment_days
    WHERE day < :window_start
    ORDER BY tenant_id DESC, dimension DESC, value DESC, day DESC
) AS last_day
WHERE mrr <> 0 OR active_customers <> 0
