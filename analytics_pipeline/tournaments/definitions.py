"""What the tournaments domain declares: its assets, the state it absorbs, its late-day finder."""

import datetime as dt

from ..declarations import Domain, LatePartitions
from ..schedules import hourly_aggregates_job
from .assets import AGGREGATE, TOURNAMENT_HISTORY, defs, late_tournament_days

DOMAIN = Domain(
    name="tournaments",
    defs=defs,
    states=(TOURNAMENT_HISTORY,),
    # A late tournament event changes the day its tournament belongs to, not the day it happened.
    # The hourly schedule keeps yesterday and today current.
    late=(LatePartitions(AGGREGATE, hourly_aggregates_job, late_tournament_days,
                         before=lambda today: today - dt.timedelta(days=1), step="day"),),
)
