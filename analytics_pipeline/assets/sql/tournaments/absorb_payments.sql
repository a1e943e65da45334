-- Tournament revenue: payment_completed amounts naming the tournament
-- (docs/metrics.md#tournament_aggregates). The ledger's key is the event id, and only payments
-- inserted now are added, so re-reading a payment adds nothing. A payment may arrive before any
-- lifecycle event; its tournament then waits, without a day, for one.
WITH paid AS (
    INSERT INTO tournament_payments (event_id, tenant_id, tournament_id, amount)
    SELECT id, tenant_id, tournament_id, amount
    FROM tournament_window_events
    WHERE event_type = 'payment_completed'
    ON CONFLICT (event_id) DO NOTHING
    RETURNING tenant_id, tournament_id, amount
),
per_tournament AS (
    SELECT tenant_id, tournament_id, sum(amount) AS amount
    FROM paid
    GROUP BY tenant_id, tournament_id
)
INSERT INTO tournament_history AS h (tenant_id, tournament_id, revenue)
SELECT tenant_id, tournament_id, amount
FROM per_tournament
ON CONFLICT (tenant_id, tournament_id) DO UPDATE SET
    revenue = h.revenue + EXCLUDED.revenue,
    updated_at = now() AT TIME ZONE 'UTC'
