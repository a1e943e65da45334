"""What the assets of every domain share, written once: a derived state's asset is declared with
`@state_asset(table)`, an aggregate's with `@aggregate_asset(table, ...)`; each domain adds only
what is its own (partitions, upstream assets, checks, freshness, tags).

Both kinds of asset write the analytics database, so their steps take a slot of the
`analytics_db` pool, which deploy/dagster.yaml limits (docs/operations.md#backfill).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import dagster as dg
import sqlalchemy as sa

from ..core.table_metadata import table_metadata
from .freshness import FreshnessWindows
from .sources import analytics_events

ANALYTICS_DB_POOL = "analytics_db"
OWNERS = ("team:analytics",)
KINDS = frozenset({"postgres"})
STATE_GROUP = "state"
AGGREGATES_GROUP = "aggregates"


def state_asset(table: sa.Table) -> Callable[[Callable], dg.AssetsDefinition]:
    """The decorator of a derived state's asset, which absorbs analytics_events into `table`
    (state.py)."""
    return dg.asset(
        deps=[analytics_events],
        group_name=STATE_GROUP,
        kinds=set(KINDS),
        owners=list(OWNERS),
        pool=ANALYTICS_DB_POOL,
        metadata=table_metadata(table),
    )


def aggregate_asset(
    table: sa.Table,
    *,
    partitions_def: dg.TimeWindowPartitionsDefinition,
    deps: Sequence,
    check_specs: Sequence[dg.AssetCheckSpec],
    freshness: FreshnessWindows,
    tags: Mapping[str, str] | None = None,
) -> Callable[[Callable], dg.AssetsDefinition]:
    """The decorator of an aggregate's asset, which writes `table` (runs.py): time-partitioned,
    and a backfill of any range is one run, which `run_aggregate` takes as one window."""
    return dg.asset(
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        deps=deps,
        group_name=AGGREGATES_GROUP,
        kinds=set(KINDS),
        owners=list(OWNERS),
        pool=ANALYTICS_DB_POOL,
        check_specs=check_specs,
        freshness_policy=freshness.policy,
        tags=tags,
        metadata=table_metadata(table),
    )
