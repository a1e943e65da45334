-- The tenant's scheduled reports, each with its :deliveries most recent deliveries. A recipient's
-- unsubscribe is logged in report_deliveries (trigger 'unsubscribe') but is no delivery: left out,
-- as `analytics-pipeline reports list` leaves it out of the last delivery.
SELECT r.id, r.name, r.report_type, r.frequency, r.recipients, r.parameters, r.is_active,
       r.last_run_at, r.next_run_at, r.created_at,
       coalesce(d.deliveries, '[]'::json) AS deliveries
FROM scheduled_reports AS r
LEFT JOIN LATERAL (
    SELECT json_agg(json_build_object(
               'scheduled_for', x.scheduled_for, 'trigger', x.trigger, 'status', x.status,
               'attempts', x.attempts, 'last_error', x.last_error, 'period_start', x.period_start,
               'period_end', x.period_end, 'sent_at', x.sent_at, 'recipients', x.recipients,
               'refused_recipients', x.refused_recipients
           ) ORDER BY x.scheduled_for DESC) AS deliveries
    FROM (
        SELECT * FROM report_deliveries
        WHERE report_id = r.id AND tenant_id = :tenant_id AND trigger <> 'unsubscribe'
        ORDER BY scheduled_for DESC
        LIMIT :deliveries
    ) AS x
) AS d ON true
WHERE r.tenant_id = :tenant_id
ORDER BY r.name, r.id
