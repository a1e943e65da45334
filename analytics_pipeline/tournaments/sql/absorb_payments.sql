-- Tournament revenue: payment_completed amounts naming the tournament
-- (docs/metrics.md#tournament_aggregates). Each tournament keeps {payment event id: amount}, so
-- re-reading a payment adds nothing. A payment may arrive before any lifecycle event; its
-- tournament then waits, without a day, for one.
WITH paid AS (
    SELECT tenant_id, tournament_id, jsonb_object_agg(id, amount) AS payment_amounts
    FROM tournament_window_events
    WHERE event_type = 'payment_completed' AND problem IS NULL
    GROUP BY tenant_id, tournament_id
)
INSERT INTO tournament_history AS h (tenant_id, tournament_id, payment_amounts, revenue)
SELECT tenant_id,
       tournament_id,
       payment_amounts,
       (SELECT sum(a.value::numeric) FROM jsonb_each_text(payment_amounts) AS a)
FROM paid
ON CONFLICT (tenant_id, tournament_id) DO UPDATE SET
    payment_amounts = h.payment_amounts || EXCLUDED.payment_amounts,
    revenue = (SELECT sum(a.value::numeric)
               FROM jsonb_each_text(h.payment_amounts || EXCLUDED.payment_amounts) AS a),
    updated_at = now() AT TIME ZONE 'UTC'
