"""When a report is due and which period it covers, in the report's own time zone.

A schedule is a wall-clock time in the report's IANA time zone plus, for weekly reports, an ISO
weekday and, for monthly reports, a day of the month (the last day in months that are shorter, so
a report on the 31st runs on 30 April and 28 or 29 February, and on 31 March again). Occurrences
are computed from these anchors, never by adding 24 hours to the previous one, so 08:00 in
Europe/Berlin stays 08:00 on both sides of a DST change. A wall-clock time that does not exist
on the day clocks go forward is delivered at the same offset as before the change (02:30 becomes
03:30); one that exists twice is delivered at its first instance.

Times stored in the database are naive UTC; functions here take and return naive UTC.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from ..core.months import add_months, month_start
from .validation import ReportParameters

UTC = dt.UTC


@dataclass(frozen=True)
class Anchor:
    frequency: str
    zone: ZoneInfo
    send_time: dt.time
    day_of_week: int  # ISO, 1 = Monday
    day_of_month: int

    def pinned(self) -> dict:
        """The anchor as parameters, so that it survives a month that clamps the day."""
        pins: dict = {"send_time": self.send_time.isoformat()}
        if self.frequency == "weekly":
            pins["day_of_week"] = self.day_of_week
        if self.frequency == "monthly":
            pins["day_of_month"] = self.day_of_month
        return pins


def to_local(moment: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    return moment.replace(tzinfo=UTC).astimezone(zone)


def to_utc(local: dt.datetime) -> dt.datetime:
    return local.astimezone(UTC).replace(tzinfo=None)


def anchor_for(frequency: str, parameters: ReportParameters, next_run_at: dt.datetime) -> Anchor:
    """The report's anchor: from its parameters, and where they are silent, from the local
    wall-clock of its current next_run_at."""
    zone = parameters.zone
    local = to_local(next_run_at, zone)
    return Anchor(
        frequency=frequency,
        zone=zone,
        send_time=parameters.send_time or local.time().replace(microsecond=0),
        day_of_week=parameters.day_of_week or local.isoweekday(),
        day_of_month=parameters.day_of_month or local.day,
    )


def _at(day: dt.date, anchor: Anchor) -> dt.datetime:
    return to_utc(dt.datetime.combine(day, anchor.send_time, tzinfo=anchor.zone))


def _month_day(month: dt.date, day_of_month: int) -> dt.date:
    """`day_of_month` in `month`, or the month's last day if it is shorter."""
    return month.replace(day=min(day_of_month, calendar.monthrange(month.year, month.month)[1]))


def next_occurrence(after: dt.datetime, anchor: Anchor) -> dt.datetime:
    """The first occurrence strictly after `after` (naive UTC)."""
    local_day = to_local(after, anchor.zone).date()
    if anchor.frequency == "daily":
        candidates = (local_day + dt.timedelta(days=k) for k in range(0, 3))
    elif anchor.frequency == "weekly":
        monday = local_day - dt.timedelta(days=local_day.isoweekday() - 1)
        first = monday + dt.timedelta(days=anchor.day_of_week - 1)
        candidates = (first + dt.timedelta(days=7 * k) for k in range(0, 3))
    elif anchor.frequency == "monthly":
        candidates = (_month_day(add_months(local_day, k), anchor.day_of_month) for k in range(0, 3))
    else:
        raise ValueError(f"unknown frequency {anchor.frequency!r}")
    for day in candidates:
        moment = _at(day, anchor)
        if moment > after:
            return moment
    raise AssertionError("an occurrence always follows within three steps")


def latest_due(next_run_at: dt.datetime, now: dt.datetime, anchor: Anchor) -> tuple[dt.datetime, int]:
    """After downtime, the latest occurrence at or before `now`, counting from next_run_at, and
    how many earlier missed occurrences it supersedes. Only that one is delivered."""
    latest, skipped = next_run_at, 0
    while (following := next_occurrence(latest, anchor)) <= now:
        latest, skipped = following, skipped + 1
    return latest, skipped


@dataclass(frozen=True)
class Period:
    """Local dates of the report's time zone, both ends inclusive."""

    start: dt.date
    end: dt.date
    previous_start: dt.date
    previous_end: dt.date
    period_type: str  # the aggregates' period_type: day, week or month
    label: str


def _label(start: dt.date, end: dt.date, period_type: str, periods: int) -> str:
    if periods == 1 and period_type == "day":
        return f"{start:%a} {start.day} {start:%b %Y}"
    if periods == 1 and period_type == "week":
        year, week, _ = start.isocalendar()
        return f"week {week} of {year} ({start.day} {start:%b} – {end.day} {end:%b %Y})"
    if periods == 1 and period_type == "month":
        return f"{start:%B %Y}"
    return f"{start.day} {start:%b %Y} – {end.day} {end:%b %Y}"


def report_period(scheduled_for: dt.datetime, frequency: str, parameters: ReportParameters) -> Period:
    """The period a delivery at `scheduled_for` covers: the previous day, ISO week or calendar
    month in the report's time zone (or the last `lookback_periods` of them), and the period of
    the same length just before it, for comparison."""
    day = to_local(scheduled_for, parameters.zone).date()
    n = parameters.lookback_periods
    if frequency == "daily":
        end = day - dt.timedelta(days=1)
        start = end - dt.timedelta(days=n - 1)
        previous_end = start - dt.timedelta(days=1)
        previous_start = previous_end - dt.timedelta(days=n - 1)
        period_type = "day"
    elif frequency == "weekly":
        this_monday = day - dt.timedelta(days=day.isoweekday() - 1)
        start = this_monday - dt.timedelta(weeks=n)
        end = this_monday - dt.timedelta(days=1)
        previous_start, previous_end = start - dt.timedelta(weeks=n), start - dt.timedelta(days=1)
        period_type = "week"
    elif frequency == "monthly":
        first = month_start(day)
        start = add_months(first, -n)
        end = first - dt.timedelta(days=1)
        previous_start = add_months(start, -n)
        previous_end = start - dt.timedelta(days=1)
        period_type = "month"
    else:
        raise ValueError(f"unknown frequency {frequency!r}")
    return Period(start, end, previous_start, previous_end, period_type, _label(start, end, period_type, n))
