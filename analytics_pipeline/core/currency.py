"""The currency a tenant's amounts are in: its organization's row of organization_settings
(migration 0022; written by the platform), else USD (docs/reports.md#currency). The reports read it
with the pipeline's own role; the Dashboard API as `analytics_app`, which sees the row of its
transaction's tenant only (migration 0023)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

DEFAULT_CURRENCY = "USD"  # an organization without a row in organization_settings

# The tenant's row, if any (:tenant_id); also read as a subquery by the Dashboard API's reads
# (analytics_pipeline/api/queries.py), which fold it into their data query.
CURRENCY_QUERY = "SELECT currency FROM organization_settings WHERE organization_id = :tenant_id"
_CURRENCY = sa.text(CURRENCY_QUERY)


def tenant_currency(conn: Connection, tenant_id: str) -> str:
    return conn.execute(_CURRENCY, {"tenant_id": tenant_id}).scalar() or DEFAULT_CURRENCY
