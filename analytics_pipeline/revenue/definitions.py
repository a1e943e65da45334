"""What the revenue domain declares: its assets, the states it absorbs, its touched-day finder."""

from ..aggregation.declarations import Domain, TouchedPartitions
from ..aggregation.schedules import hourly_aggregates_job
from .assets import PAYMENT_HISTORY, SUBSCRIPTION_HISTORY, defs, touched_revenue_days

DOMAIN = Domain(
    name="revenue",
    defs=defs,
    states=(SUBSCRIPTION_HISTORY, PAYMENT_HISTORY),
    touched=(TouchedPartitions("revenue_aggregates", hourly_aggregates_job, touched_revenue_days, step="day"),),
)
