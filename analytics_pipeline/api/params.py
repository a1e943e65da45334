"""Query parameters of the /v1 endpoints: parsed here so that a bad one gets a 400 naming it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

from ..aggregation.periods import PERIOD_TYPES
from ..core.events import EARLIEST_TIMESTAMP
from ..core.months import add_months
from ..core.schema import SEGMENT_DIMENSIONS

FORMATS = ("json", "csv")

# Every day a parameter names lies in [FIRST_DAY, LAST_DAY]: no event before FIRST_DAY is accepted
# (core/events.py), so no aggregate row precedes it; LAST_DAY keeps every period and range the API
# works out from a day (the period holding it, the one before, a default range) far inside what
# Python's dates and PostgreSQL's can hold.
FIRST_DAY = EARLIEST_TIMESTAMP.date()
LAST_DAY = dt.date(2999, 12, 31)

# The longest range one request may cover, per period type, in days.
MAX_RANGE_DAYS = {"day": 1096, "week": 3653, "month": 3653, "quarter": 3653, "year": 3653}
MAX_COHORTS = 60

# The range when `from` is not given: it ends at `to` and spans this many periods.
DEFAULT_PERIODS = {"day": 90, "week": 26, "month": 24, "quarter": 12, "year": 5}


class BadParameter(ValueError):
    def __init__(self, parameter: str, message: str, **extra):
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.extra = extra


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def period_type(raw: str | None, default: str = "day") -> str:
    value = default if raw in (None, "") else raw
    if value not in PERIOD_TYPES:
        raise BadParameter("period_type", f"must be one of {', '.join(PERIOD_TYPES)}, got {raw!r}")
    return value


def output_format(raw: str | None) -> str:
    value = "json" if raw in (None, "") else raw
    if value not in FORMATS:
        raise BadParameter("format", f"must be json or csv, got {raw!r}")
    return value


def segment(raw: str | None) -> str:
    """The dimension of revenue_segments (docs/metrics.md#segments) an answer splits by; default plan."""
    value = "plan" if raw in (None, "") else raw
    if value not in SEGMENT_DIMENSIONS:
        raise BadParameter("segment", f"must be one of {', '.join(SEGMENT_DIMENSIONS)}, got {raw!r}")
    return value


# /v1/cohorts/segments' `segment`, and the dimension of user_cohort_segments it reads
# (docs/metrics.md#cohort-segments): `plan` is the plan of the user's first subscription.
COHORT_SEGMENTS = {"plan": "first_plan", "source": "source"}


def cohort_segment(raw: str | None) -> str:
    """The `segment` of /v1/cohorts/segments: plan (default) or source."""
    value = "plan" if raw in (None, "") else raw
    if value not in COHORT_SEGMENTS:
        raise BadParameter("segment", f"must be one of {', '.join(COHORT_SEGMENTS)}, got {raw!r}")
    return value


def date(name: str, raw: str | None, default: dt.date | None = None) -> dt.date:
    if raw in (None, ""):
        if default is None:
            raise BadParameter(name, "is required (a date like 2025-01-31)")
        return default
    try:
        value = dt.date.fromisoformat(raw) if DAY.fullmatch(raw) else None
    except ValueError:
        value = None
    if value is None:
        raise BadParameter(name, f"must be a date like 2025-01-31, got {raw!r}")
    return in_range(name, value)


# ISO 8601's calendar date only: fromisoformat alone also reads 20250131 and 2025-W05-1.
DAY = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
MONTH = re.compile(r"\d{4}-\d{2}(-\d{2})?", re.ASCII)


def in_range(name: str, value: dt.date) -> dt.date:
    if not FIRST_DAY <= value <= LAST_DAY:
        raise BadParameter(name, f"{value} is outside {FIRST_DAY}..{LAST_DAY}")
    return value


def month(name: str, raw: str | None, default: dt.date) -> dt.date:
    """A month as YYYY-MM (or any day of it, YYYY-MM-DD): its first day."""
    if raw in (None, ""):
        return default.replace(day=1)
    try:
        value = dt.date.fromisoformat(raw + "-01" if len(raw) == 7 else raw) if MONTH.fullmatch(raw) else None
    except ValueError:
        value = None
    if value is None:
        raise BadParameter(name, f"must be a month like 2025-01, got {raw!r}")
    return in_range(name, value.replace(day=1))


MONTHS = {"month": 1, "quarter": 3, "year": 12}


def period_start(kind: str, day: dt.date) -> dt.date:
    """The first day of the period of `kind` holding `day` (docs/metrics.md#periods)."""
    if kind == "day":
        return day
    if kind == "week":
        return day - dt.timedelta(days=day.weekday())
    return day.replace(month=(day.month - 1) // MONTHS[kind] * MONTHS[kind] + 1, day=1)


def periods_after(kind: str, start: dt.date, periods: int) -> dt.date:
    """The first day of the period `periods` periods of `kind` after the one starting `start`
    (negative: before)."""
    if kind in ("day", "week"):
        return start + dt.timedelta(days=periods * (7 if kind == "week" else 1))
    return add_months(start, periods * MONTHS[kind])


def _minus_periods(day: dt.date, kind: str, periods: int) -> dt.date:
    """The first day of the range of `periods` periods of `kind` ending with the one holding `day`,
    not before FIRST_DAY."""
    return max(FIRST_DAY, periods_after(kind, period_start(kind, day), 1 - periods))


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


# /v1/kpis compares the period holding `day` up to `day` with as many days of the period before
# (to_date), or the last period complete on `day` with the one before it (complete).
COMPARISONS = ("to_date", "complete")


@dataclasses.dataclass(frozen=True)
class Span:
    """Days first..last of the period starting `period_start`; `whole`: all of its days."""

    period_start: dt.date
    first: dt.date
    last: dt.date
    whole: bool

    @property
    def label(self) -> str:
        """`1–4 Dec`, `4 Dec`, `1 Oct – 4 Dec`, `29 Dec 2025 – 4 Jan 2026`."""
        first, last = self.first, self.last
        if first == last:
            return f"{last.day} {last:%b}"
        if (first.year, first.month) == (last.year, last.month):
            return f"{first.day}–{last.day} {last:%b}"
        if first.year == last.year:
            return f"{first.day} {first:%b} – {last.day} {last:%b}"
        return f"{first.day} {first:%b} {first.year} – {last.day} {last:%b} {last.year}"


@dataclasses.dataclass(frozen=True)
class Comparison:
    period_type: str
    compare: str
    day: dt.date
    current: Span
    previous: Span

    @property
    def label(self) -> str:
        return f"{self.current.label} vs {self.previous.label}"


def comparison(raw_period_type: str | None, raw_day: str | None, raw_compare: str | None) -> Comparison:
    """The two spans /v1/kpis compares for `day` (docs/api.md#kpis). to_date: the period holding
    `day`, its days up to `day`, against the same number of first days of the period before
    (fewer when that period is shorter: 30 March against all of February); on a period's last day
    both are whole. complete: the period holding `day` when `day` is its last, else the one before
    it, against the one before that."""
    kind = period_type(raw_period_type, "month")
    day = date("day", raw_day, today())
    compare = "to_date" if raw_compare in (None, "") else raw_compare
    if compare not in COMPARISONS:
        raise BadParameter("compare", f"must be one of {', '.join(COMPARISONS)}, got {raw_compare!r}")
    start = period_start(kind, day)
    end = periods_after(kind, start, 1) - dt.timedelta(days=1)
    if compare == "complete" and day < end:
        start, end = periods_after(kind, start, -1), start - dt.timedelta(days=1)
    last = end if compare == "complete" else day
    previous_start = periods_after(kind, start, -1)
    previous_last = min(previous_start + (last - start), start - dt.timedelta(days=1))
    if last == end:
        previous_last = start - dt.timedelta(days=1)
    return Comparison(
        kind, compare, day,
        Span(start, start, last, last == end),
        Span(previous_start, previous_start, previous_last, previous_last == start - dt.timedelta(days=1)),
    )
