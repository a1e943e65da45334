-- The sensor reads the changes committed since its last tick, seconds ago: a week-old stamp is
-- read already (docs/metrics.md#segment-state).
DELETE FROM segment_state_changes WHERE recorded_at < (now() AT TIME ZONE 'UTC') - interval '7 days'
