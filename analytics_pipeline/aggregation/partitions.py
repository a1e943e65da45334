"""Time partitions shared by the aggregate assets. All in UTC."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from ..core.settings import start_date

# From ANALYTICS_START_DATE, the first day of the data, read when the code location loads: a
# partition before it would only ever show as missing. end_offset=1: today's partial day (and the
# running month) is a partition of its own, so the hourly schedule can keep it current. Keys are
# each partition's first day, YYYY-MM-DD.
daily_partitions = dg.DailyPartitionsDefinition(
    start_date=start_date().isoformat(), timezone="UTC", end_offset=1
)

monthly_partitions = dg.MonthlyPartitionsDefinition(
    start_date=start_date().replace(day=1).isoformat(), timezone="UTC", end_offset=1
)


def partition_range_tags(first: dt.date, last: dt.date) -> dict[str, str]:
    """Run tags asking for one run over the partitions first..last (inclusive): how schedules,
    sensors and tests request a range, as a single-run backfill does."""
    return {
        "dagster/asset_partition_range_start": first.isoformat(),
        "dagster/asset_partition_range_end": last.isoformat(),
    }

