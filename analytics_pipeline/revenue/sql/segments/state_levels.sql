-- Each value's MRR and active customers at the end of every day from the eve of the window (the
-- day before its first) to the eve of its last day, from the segment state
-- (docs/metrics.md#segment-state): those of the value's last state row on or before the day. Each
-- state row holds from its day until the day before the value's next one; the rows are generated
-- from the state rows of those days and each value's last one before them. The bridges' openings
-- of the periods starting in the window (check_rows.sql).
CREATE TEMP TABLE segment_state_levels ON COMMIT DROP AS
WITH window_state AS (
    SELECT tenant_id, dimension, value, day, mrr, active_customers
    FROM tenant_segment_days
    WHERE day >= CAST(:window_start AS date) - 1
      AND day < CAST(:window_end AS date) - 1
    UNION ALL
    (
        SELECT DISTINCT ON (tenant_id, dimension, value) tenant_id, dimension, value, day, mrr, active_customers
        FROM tenant_segment_days
        WHERE day < CAST(:window_start AS date) - 1
        ORDER BY tenant_id DESC, dimension DESC, value DESC, day DESC
    )
),
held AS (
    SELECT tenant_id, dimension, value, mrr, active_customers,
           greatest(day, CAST(:window_start AS date) - 1) AS first_day,
           coalesce(lead(day) OVER w - 1, CAST(:window_end AS date) - 2) AS last_day
    FROM window_state
    WINDOW w AS (PARTITION BY tenant_id, dimension, value ORDER BY day)
)
SELECT h.tenant_id, h.dimension, h.value, h.first_day + n AS day, h.mrr, h.active_customers
FROM held AS h
CROSS JOIN LATERAL generate_series(0, h.last_day - h.first_day) AS n
WHERE h.mrr <> 0 OR h.active_customers <> 0
