"""Query parameters of the /v1 endpoints: parsed here so that a bad one gets a 400 naming it."""

from __future__ import annotations

import dataclasses
import datetime as dt

from ..aggregation.periods import PERIOD_TYPES

FORMATS = ("json", "csv")

# The longest range one request may cover, per period type, in days.
MAX_RANGE_DAYS = {"day": 1096, "week": 3653, "month": 3653, "quarter": 3653, "year": 3653}
MAX_COHORTS = 60

# The range when `from` is not given: it ends at `to` and spans this many periods.
DEFAULT_PERIODS = {"day": 90, "week": 26, "month": 24, "quarter": 12, "year": 5}


class BadParameter(ValueError):
    def __init__(self, parameter: str, message: str):
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def period_type(raw: str | None, default: str = "day") -> str:
    value = default if raw in (None, "") else raw
    if value not in PERIOD_TYPES:
        raise BadParameter("period_type", f"must be one of {', '.join(PERIOD_TYPES)}, got {raw!r}")
    return value


def output_format(raw: str | None) -> str:
    value = "json" if raw in (None, "") else raw.lower()
    if value not in FORMATS:
        raise BadParameter("format", f"must be json or csv, got {raw!r}")
    return value


def date(name: str, raw: str | None, default: dt.date | None = None) -> dt.date:
    if raw in (None, ""):
        if default is None:
            raise BadParameter(name, "is required (a date like 2025-01-31)")
        return default
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise BadParameter(name, f"must be a date like 2025-01-31, got {raw!r}") from None


def month(name: str, raw: str | None, default: dt.date) -> dt.date:
    """A month as YYYY-MM (or any day of it, YYYY-MM-DD): its first day."""
    if raw in (None, ""):
        return default.replace(day=1)
    try:
        value = dt.date.fromisoformat(raw + "-01" if len(raw) == 7 else raw)
    except ValueError:
        raise BadParameter(name, f"must be a month like 2025-01, got {raw!r}") from None
    return value.replace(day=1)


def _minus_periods(day: dt.date, kind: str, periods: int) -> dt.date:
    """The first day of the range of `periods` periods of `kind` ending with the one holding `day`."""
    if kind == "day":
        return day - dt.timedelta(days=periods - 1)
    if kind == "week":
        return day - dt.timedelta(days=day.weekday() + 7 * (periods - 1))
    months = {"month": 1, "quarter": 3, "year": 12}[kind] * (periods - 1)
    first = day.replace(day=1)
    if kind == "quarter":
        first = first.replace(month=(first.month - 1) // 3 * 3 + 1)
    elif kind == "year":
        first = first.replace(month=1)
    year, month_index = divmod(first.year * 12 + first.month - 1 - months, 12)
    return dt.date(year, month_index + 1, 1)


@dataclasses.dataclass(frozen=True)
class Range:
    period_type: str
    date_from: dt.date
    date_to: dt.date


def series_range(raw_period_type: str | None, raw_from: str | None, raw_to: str | None,
                 default_period_type: str = "day") -> Range:
    kind = period_type(raw_period_type, default_period_type)
    date_to = date("to", raw_to, today())
    date_from = date("from", raw_from, _minus_periods(date_to, kind, DEFAULT_PERIODS[kind]))
    check_order(date_from, date_to)
    if (date_to - date_from).days + 1 > MAX_RANGE_DAYS[kind]:
        raise BadParameter(
            "from", f"the range {date_from}..{date_to} is longer than {MAX_RANGE_DAYS[kind]} days, "
            f"the limit for period_type {kind}"
        )
    return Range(kind, date_from, date_to)


def check_order(date_from: dt.date, date_to: dt.date) -> None:
    if date_from > date_to:
        raise BadParameter("from", f"{date_from} is after to ({date_to})")


def cohort_range(raw_from: str | None, raw_to: str | None) -> tuple[dt.date, dt.date]:
    date_to = month("to", raw_to, today())
    date_from = month("from", raw_from, _minus_periods(date_to, "month", 24))
    check_order(date_from, date_to)
    cohorts = (date_to.year - date_from.year) * 12 + date_to.month - date_from.month + 1
    if cohorts > MAX_COHORTS:
        raise BadParameter("from", f"{cohorts} cohorts {date_from:%Y-%m}..{date_to:%Y-%m} is more than {MAX_COHORTS}")
    return date_from, date_to
