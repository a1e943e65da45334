"""What the revenue domain declares: its assets, the states it absorbs, its touched-day finder,
the aggregate it publishes."""

import dagster as dg

from ..aggregation.declarations import Domain, TouchedPartitions
from ..aggregation.schedules import hourly_aggregates_job
from .assets import (
    AGGREGATE,
    FRESHNESS,
    PAYMENT_HISTORY,
    SUBSCRIPTION_HISTORY,
    payment_history,
    revenue_aggregates,
    revenue_kpis,
    subscription_history,
    touched_revenue_days,
)

defs = dg.Definitions(assets=[subscription_history, payment_history, revenue_aggregates, revenue_kpis])

DOMAIN = Domain(
    name="revenue",
    defs=defs,
    states=(SUBSCRIPTION_HISTORY, PAYMENT_HISTORY),
    touched=(TouchedPartitions(AGGREGATE, hourly_aggregates_job, touched_revenue_days, step="day"),),
    aggregates={AGGREGATE: FRESHNESS},
)
