"""The code location: assembles the domains' definitions and the shared resources."""

import dagster as dg

from . import alerts, housekeeping, new_events, reconciliation, reports, retention, schedules, sources
from .domains import DOMAINS
from .resources import MailResource, pipeline_resources

defs = dg.Definitions.merge(
    sources.defs,
    *(domain.defs for domain in DOMAINS),
    reports.defs,
    retention.defs,
    schedules.defs,
    new_events.defs,
    reconciliation.defs,
    alerts.defs,
    housekeeping.defs,
    dg.Definitions(resources={**pipeline_resources(), "mail": MailResource()}),
)
