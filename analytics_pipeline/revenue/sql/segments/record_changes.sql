-- Which tenants' segment state this absorb changed and from which day, stamped with its
-- transaction: the new-events sensor finds the days revenue_segments must recompute from the
-- stamps committed since its last tick (docs/metrics.md#segment-state).
INSERT INTO segment_state_changes (tenant_id, from_day)
SELECT tenant_id, min(from_day) FROM revenue_segment_changed_customers GROUP BY tenant_id
