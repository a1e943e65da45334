"""The retention rule for raw events: how many calendar months `analytics_events` keeps, and the
cutoff before which an event has expired (docs/operations.md#retention-of-raw-events)."""

from __future__ import annotations

import datetime as dt

from ..core.months import shift_months
from ..core.settings import ConfigError, env_int

DEFAULT_RETENTION_MONTHS = 13


def retention_months() -> int:
    """How many calendar months of raw events are kept (`ANALYTICS_RETENTION_MONTHS`, default 13)."""
    return env_int("ANALYTICS_RETENTION_MONTHS", DEFAULT_RETENTION_MONTHS)


def retention_cutoff(now: dt.datetime | None = None, months: int | None = None) -> dt.datetime:
    """Start of the UTC day `months` (default `retention_months()`) calendar months before `now`
    (naive UTC).

    Raw events with `timestamp` before it are purged; an event exactly at the cutoff stays. A
    day shorter than the target month's length clamps to its last day (31 March -> 28/29 Feb).
    """
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    if months is None:
        months = retention_months()
    elif months < 1:
        raise ConfigError(f"months must be a whole number >= 1, got {months!r}")
    day = shift_months(now.date(), -months)
    return dt.datetime(day.year, day.month, day.day)
