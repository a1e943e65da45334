"""Where the project keeps its local state, and the settings read from the environment.

Every setting is read when it is needed, not at import, so tests and the CLI can set them.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent
MIGRATIONS_DIR = PROJECT_DIR / "migrations"
PYPROJECT = PROJECT_DIR / "pyproject.toml"


class ConfigError(ValueError):
    """Invalid configuration. The message names the setting and says what to do."""


def analytics_home() -> Path:
    """Local state: the embedded database, the Dagster home, the mail outbox.

    `ANALYTICS_HOME` overrides the default `.analytics/` in the project folder.
    """
    return Path(os.environ.get("ANALYTICS_HOME") or PROJECT_DIR / ".analytics").resolve()


def start_date() -> dt.date:
    """First day of the daily partitions (`ANALYTICS_START_DATE`, default 2024-01-01)."""
    raw = os.environ.get("ANALYTICS_START_DATE", "2024-01-01")
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise ConfigError(
            f"ANALYTICS_START_DATE must be a date like 2024-01-01, got {raw!r}"
        ) from None


def retention_months() -> int:
    """How many calendar months of raw events are kept (`ANALYTICS_RETENTION_MONTHS`, default 13)."""
    raw = os.environ.get("ANALYTICS_RETENTION_MONTHS", "13")
    try:
        months = int(raw)
    except ValueError:
        months = 0
    if months < 1:
        raise ConfigError(f"ANALYTICS_RETENTION_MONTHS must be a whole number >= 1, got {raw!r}")
    return months


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
    from .months import shift_months

    day = shift_months(now.date(), -months)
    return dt.datetime(day.year, day.month, day.day)
