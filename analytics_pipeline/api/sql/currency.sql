-- The tenant's currency (docs/reports.md#currency): its organization's row of
-- organization_settings, which analytics_app reads for the tenant of the transaction only
-- (migration 0023). No row: none, and the caller answers the default.
SELECT currency FROM organization_settings WHERE organization_id = :tenant_id
