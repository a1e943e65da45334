"""What the revenue domain declares: its assets, the states it absorbs, its touched-day finders,
the aggregates it publishes."""

import dagster as dg

from ..aggregation.declarations import Domain, TouchedPartitions
from ..aggregation.schedules import hourly_aggregates_job
from .assets import (
    AGGREGATE,
    CUSTOMER_SOURCES,
    FRESHNESS,
    PAYMENT_HISTORY,
    SUBSCRIPTION_HISTORY,
    customer_sources,
    payment_history,
    revenue_aggregates,
    revenue_kpis,
    subscription_history,
    touched_revenue_days,
)
from .segments import SEGMENTS, revenue_segments, touched_segment_days

defs = dg.Definitions(
    assets=[subscription_history, payment_history, customer_sources, revenue_aggregates, revenue_kpis, revenue_segments]
)

DOMAIN = Domain(
    name="revenue",
    defs=defs,
    states=(SUBSCRIPTION_HISTORY, PAYMENT_HISTORY, CUSTOMER_SOURCES),
    touched=(
        TouchedPartitions(AGGREGATE, hourly_aggregates_job, touched_revenue_days, step="day"),
        TouchedPartitions(SEGMENTS, hourly_aggregates_job, touched_segment_days, step="day"),
    ),
    aggregates={AGGREGATE: FRESHNESS, SEGMENTS: FRESHNESS},
)
