"""Tables the platform writes and the pipeline only reads: the start of the lineage."""

import dagster as dg

from ..core.schema import analytics_events as analytics_events_table
from .runs import column_schema

PLATFORM_GROUP = "platform"

organizations = dg.AssetSpec(
    "organizations",
    description="The platform's tenants. Deleting one cascades to all of its analytics rows.",
    group_name=PLATFORM_GROUP,
    kinds={"postgres"},
    metadata={"dagster/table_name": "public.organizations"},
)

users = dg.AssetSpec(
    "users",
    description="The platform's users (customers and players), each belonging to one tenant.",
    deps=[organizations],
    group_name=PLATFORM_GROUP,
    kinds={"postgres"},
    metadata={"dagster/table_name": "public.users"},
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
    metadata={
        "dagster/table_name": "public.analytics_events",
        "dagster/column_schema": column_schema(analytics_events_table),
    },
)

defs = dg.Definitions(assets=[organizations, users, analytics_events])
