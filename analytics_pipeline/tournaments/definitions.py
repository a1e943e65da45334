"""What the tournaments domain declares: its assets, the state it absorbs, its touched-day finder,
the aggregate it publishes."""

import dagster as dg

from ..aggregation.declarations import Domain, TouchedPartitions
from ..aggregation.schedules import hourly_aggregates_job
from .assets import (
    AGGREGATE,
    FRESHNESS,
    TOURNAMENT_HISTORY,
    touched_tournament_days,
    tournament_aggregates,
    tournament_history,
)

defs = dg.Definitions(assets=[tournament_history, tournament_aggregates])

DOMAIN = Domain(
    name="tournaments",
    defs=defs,
    states=(TOURNAMENT_HISTORY,),
    # A tournament event changes the day its tournament belongs to, not the day it happened.
    touched=(TouchedPartitions(AGGREGATE, hourly_aggregates_job, touched_tournament_days, step="day"),),
    aggregates={AGGREGATE: FRESHNESS},
)
