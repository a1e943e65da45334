"""The domains of the code location, collected once: definitions.py assembles their Dagster
definitions, retention and reconciliation see their declared states, the new-events sensor asks
their touched-partition finders. A new domain is added here and nowhere else."""

from __future__ import annotations

from . import cohorts, revenue, tournaments
from .aggregation.declarations import DerivedState, Domain, TouchedPartitions
from .aggregation.freshness import FreshnessWindows

DOMAINS: tuple[Domain, ...] = (revenue.DOMAIN, tournaments.DOMAIN, cohorts.DOMAIN)


def declared_states() -> tuple[DerivedState, ...]:
    """Every derived state of every domain."""
    return tuple(s for domain in DOMAINS for s in domain.states)


def declared_state_names() -> tuple[str, ...]:
    return tuple(s.name for s in declared_states())


def touched_partitions() -> tuple[TouchedPartitions, ...]:
    """How newly committed events reach each partitioned aggregate, for the new-events sensor."""
    return tuple(touched for domain in DOMAINS for touched in domain.touched)


def aggregate_freshness() -> dict[str, FreshnessWindows]:
    """Every aggregate the domains publish, with how old it may get."""
    return {name: windows for domain in DOMAINS for name, windows in domain.aggregates.items()}
