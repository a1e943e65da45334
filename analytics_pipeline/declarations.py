"""What a domain declares, so that the assembly, retention and the late-data sensor see the same
set from every entry point (the code location, the CLI, tests): nothing registers itself by being
imported. analytics_pipeline/domains.py collects the declarations."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import dagster as dg
from sqlalchemy.engine import Connection

# Every event type, for a state that absorbs any event (activity).
ALL_EVENT_TYPES = ("*",)


@dataclass(frozen=True)
class DerivedState:
    """A compact state absorbed incrementally from analytics_events by created_at
    (analytics_pipeline/state.py). `name` is both its asset and its state_watermarks row; raw-event
    retention waits until it has absorbed every expired event of `event_types`."""

    name: str
    table: str
    event_types: tuple[str, ...]


@dataclass(frozen=True)
class LatePartitions:
    """How late events reach a partitioned aggregate: `find(conn, since, through, before)` returns
    the partition starts (days, or first days of months) before `before` that events created in
    (since, through] change; `before(today)` is the first partition the aggregate's schedule
    keeps current anyway. The late-data sensor runs `job` over each merged range."""

    asset: str
    job: dg.UnresolvedAssetJobDefinition
    find: Callable[[Connection, dt.datetime, dt.datetime, dt.date], set[dt.date]]
    before: Callable[[dt.date], dt.date]
    step: str  # "day" or "month": which partition starts are adjacent


@dataclass(frozen=True)
class Domain:
    """Everything one domain package owns: its Dagster definitions and what the shared machinery
    needs to know about it."""

    name: str
    defs: dg.Definitions
    states: tuple[DerivedState, ...] = ()
    late: tuple[LatePartitions, ...] = ()
