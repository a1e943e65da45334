"""What a domain declares, so that the assembly, retention, reconciliation and the new-events
sensor see the same set from every entry point (the code location, the CLI, tests): nothing
registers itself by being imported. analytics_pipeline/domains.py collects the declarations."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import dagster as dg
from sqlalchemy.engine import Connection

from .freshness import FreshnessWindows
from .state import Committed

# Every event type, for a state that absorbs any event (activity).
ALL_EVENT_TYPES = ("*",)


@dataclass(frozen=True)
class DerivedState:
    """A compact state absorbed incrementally from analytics_events in commit order
    (analytics_pipeline/aggregation/state.py). `name` is both its asset and its state_watermarks row; raw-event
    retention waits until it has absorbed every expired event of `event_types`. `reconcile_sql`
    proves it holds every event it has absorbed (analytics_pipeline/aggregation/reconciliation.py): per tenant
    and day, (tenant_id, day, raw_events, in_state) where they differ, over the events matching the
    placeholder {absorbed}."""

    name: str
    table: str
    event_types: tuple[str, ...]
    reconcile_sql: str


@dataclass(frozen=True)
class TouchedPartitions:
    """How newly committed events reach a partitioned aggregate: `find(conn, committed, before)`
    returns the partition starts (days, or first days of months) before `before` that the
    `committed` events (analytics_pipeline.aggregation.state.Committed) change. The new-events sensor runs
    `job` over them (analytics_pipeline/aggregation/new_events.py)."""

    asset: str
    job: dg.UnresolvedAssetJobDefinition
    find: Callable[[Connection, Committed, dt.date], set[dt.date]]
    step: str  # "day" or "month": the partitions' length


@dataclass(frozen=True)
class Domain:
    """Everything one domain package owns: its Dagster definitions and what the shared machinery
    needs to know about it."""

    name: str
    defs: dg.Definitions
    states: tuple[DerivedState, ...] = ()
    touched: tuple[TouchedPartitions, ...] = ()
    # The aggregate tables the domain publishes to readers (the Dashboard API, the reports), each
    # with how old it may get (analytics_pipeline/aggregation/freshness.py).
    aggregates: Mapping[str, FreshnessWindows] = field(default_factory=dict)
