"""What the revenue domain declares: its assets, the states it absorbs, its late-day finder."""

import datetime as dt

from ..declarations import Domain, LatePartitions
from ..schedules import hourly_aggregates_job
from .assets import PAYMENT_HISTORY, SUBSCRIPTION_HISTORY, defs, late_revenue_days

DOMAIN = Domain(
    name="revenue",
    defs=defs,
    states=(SUBSCRIPTION_HISTORY, PAYMENT_HISTORY),
    # The hourly schedule keeps yesterday and today current.
    late=(LatePartitions("revenue_aggregates", hourly_aggregates_job, late_revenue_days,
                         before=lambda today: today - dt.timedelta(days=1), step="day"),),
)
