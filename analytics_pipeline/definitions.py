"""The code location: assembles the domains' definitions and the shared resources."""

import dagster as dg

from . import alerts, reports, retention
from .aggregation import new_events, reconciliation, schedules, sources
from .core.resources import MailResource, pipeline_resources
from .domains import DOMAINS, declared_states, touched_partitions
from .retention import dagster_runs as housekeeping

defs = dg.Definitions.merge(
    sources.defs,
    *(domain.defs for domain in DOMAINS),
    reports.defs,
    retention.defs,
    schedules.defs,
    dg.Definitions(sensors=[new_events.new_events_sensor(touched_partitions())]),
    reconciliation.reconciliation(declared_states()),
    alerts.defs,
    housekeeping.defs,
    dg.Definitions(resources={**pipeline_resources(), "mail": MailResource()}),
)
