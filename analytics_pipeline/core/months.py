"""Calendar-month arithmetic, written once for the whole project (partitions, cohorts, the
new-events sensor, the retention cutoff, the generator)."""

from __future__ import annotations

import datetime as dt


def month_start(day: dt.date) -> dt.date:
    """The first day of `day`'s calendar month: the key of its monthly partition."""
    return day.replace(day=1)


def add_months(month: dt.date, months: int) -> dt.date:
    """The first day of the calendar month `months` after `month`'s (negative: before)."""
    index = month.year * 12 + month.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def shift_months(day: dt.date, months: int) -> dt.date:
    """The same day `months` calendar months later (or earlier), clamped to that month's last
    day (31 March - 1 month is 28/29 February)."""
    first = add_months(day, months)
    last_day = (add_months(first, 1) - dt.timedelta(days=1)).day
    return first.replace(day=min(day.day, last_day))
