"""Late data: events that arrive for partitions the schedules no longer cover.

The sensor follows `analytics_events.created_at` with a cursor (the index on created_at keeps a
tick cheap however large the table) and asks every domain's declared late-partition finder which
partitions late events change (days of the daily aggregates, months of user_cohorts), merged into
ranges, one run per asset and range.
"""

import datetime as dt
import json

import dagster as dg
import sqlalchemy as sa

from .domains import DOMAINS
from .months import add_months
from .partitions import partition_range_tags
from .resources import AnalyticsDatabase
from .settings import start_date

# An event is read once its transaction has had this long to commit: created_at is the
# inserting transaction's start, so a later-committing event can carry an earlier stamp.
COMMIT_LAG = dt.timedelta(minutes=5)

LATE_PARTITIONS = tuple(late for domain in DOMAINS for late in domain.late)

_NEXT = {
    "day": lambda start: start + dt.timedelta(days=1),
    "month": lambda start: add_months(start, 1),
}


def merge_into_ranges(starts: set[dt.date], step: str = "day") -> list[tuple[dt.date, dt.date]]:
    """Partition starts merged into ranges (first, last) of adjacent partitions."""
    following = _NEXT[step]
    ranges: list[tuple[dt.date, dt.date]] = []
    for start in sorted(starts):
        if ranges and following(ranges[-1][1]) == start:
            ranges[-1] = (ranges[-1][0], start)
        else:
            ranges.append((start, start))
    return ranges


def _jobs() -> list:
    jobs: dict[str, object] = {}
    for late in LATE_PARTITIONS:
        jobs.setdefault(late.job.name, late.job)
    return list(jobs.values())


@dg.sensor(
    jobs=_jobs(),
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def late_events_sensor(context: dg.SensorEvaluationContext, database: AnalyticsDatabase):
    """Requests the partitions (older than those the schedules keep current) that late-arriving
    events change, for every aggregate that declares a late-partition finder."""
    with database.engine.connect() as conn:
        now = conn.execute(sa.text("SELECT statement_timestamp() AT TIME ZONE 'UTC'")).scalar_one()
        through = now - COMMIT_LAG
        if not context.cursor:
            return dg.SensorResult(
                skip_reason="first tick: following events created from now on",
                cursor=json.dumps({"created_through": through.isoformat()}),
            )
        since = dt.datetime.fromisoformat(json.loads(context.cursor)["created_through"])
        first = start_date()
        requests = []
        for late in LATE_PARTITIONS:
            found = late.find(conn, since, through, late.before(now.date()))
            # A month partition starts on the first of the month that holds the first day.
            floor = first.replace(day=1) if late.step == "month" else first
            for low, high in merge_into_ranges({p for p in found if p >= floor}, late.step):
                requests.append(
                    dg.RunRequest(
                        run_key=f"{late.asset}:{low}..{high}:{through.isoformat()}",
                        job_name=late.job.name,
                        asset_selection=[dg.AssetKey(late.asset)],
                        tags=partition_range_tags(low, high),
                    )
                )
    return dg.SensorResult(
        run_requests=requests, cursor=json.dumps({"created_through": through.isoformat()})
    )


defs = dg.Definitions(sensors=[late_events_sensor])
