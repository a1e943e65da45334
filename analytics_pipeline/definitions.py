"""The code location: assembles the domain modules' definitions and the shared resources."""

import dagster as dg

from . import alerts, cohorts, late_data, reports, retention, revenue, schedules, sources, tournaments
from .resources import AnalyticsDatabase, MailResource

defs = dg.Definitions.merge(
    sources.defs,
    revenue.defs,
    tournaments.defs,
    cohorts.defs,
    reports.defs,
    retention.defs,
    schedules.defs,
    late_data.defs,
    alerts.defs,
    dg.Definitions(resources={"database": AnalyticsDatabase(), "mail": MailResource()}),
)
