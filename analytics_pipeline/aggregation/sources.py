"""Tables the platform writes and the pipeline only reads: the start of the lineage."""

import dagster as dg

from ..core import schema
from ..core.table_metadata import table_metadata

PLATFORM_GROUP = "platform"

organizations = dg.AssetSpec(
    "organizations",
    description="The platform's tenants. Deleting one cascades to all of its analytics rows.",
    group_name=PLATFORM_GROUP,
    kinds={"postgres"},
    # schema.py does not describe the platform's own columns.
    metadata=table_metadata(schema.organizations, columns=False),
)

users = dg.AssetSpec(
    "users",
    description="The platform's users (customers and players), each belonging to one tenant.",
    deps=[organizations],
    group_name=PLATFORM_GROUP,
    kinds={"postgres"},
    metadata=table_metadata(schema.users, columns=False),
)

analytics_events = dg.AssetSpec(
    "analytics_events",
    description=(
        "Raw event stream written by the platform, one row per event; kept for 13 months. "
        "The event contract is docs/events.md."
    ),
    deps=[organizations, users],
    group_name=PLATFORM_GROUP,
    kinds={"postgres"},
    metadata=table_metadata(schema.analytics_events),
)

defs = dg.Definitions(assets=[organizations, users, analytics_events])
