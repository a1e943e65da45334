"""The code location: assembles the domain modules' definitions and the shared resources."""

import dagster as dg

from . import alerts, reports, retention, schedules, sensors
from .assets import cohorts, revenue, sources, tournaments
from .resources import AnalyticsDatabase, MailResource

defs = dg.Definitions.merge(
    sources.defs,
    revenue.defs,
    tournaments.defs,
    cohorts.defs,
    reports.defs,
    retention.defs,
    schedules.defs,
    sensors.defs,
    alerts.defs,
    dg.Definitions(resources={"database": AnalyticsDatabase(), "mail": MailResource()}),
)
