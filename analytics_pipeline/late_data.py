"""Late data: events that arrive for days the hourly schedule no longer covers.

The sensor follows `analytics_events.created_at` with a cursor (the index on created_at keeps a
tick cheap however large the table) and requests the day partitions that late events change,
merged into ranges, one run per asset and range.
"""

import datetime as dt
import json
from collections.abc import Callable

import dagster as dg
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .tournaments.assets import late_tournament_days
from .resources import AnalyticsDatabase
from .partitions import partition_range_tags
from .schedules import hourly_aggregates_job
from .settings import start_date

# An event is read once its transaction has had this long to commit: created_at is the
# inserting transaction's start, so a later-committing event can carry an earlier stamp.
COMMIT_LAG = dt.timedelta(minutes=5)

LateDays = Callable[[Connection, dt.datetime, dt.datetime, dt.date], set[dt.date]]


def late_revenue_days(conn: Connection, since: dt.datetime, through: dt.datetime, before: dt.date) -> set[dt.date]:
    """Days before `before` whose revenue rows change because of events created in
    (since, through]. A subscription event changes MRR from its day to today, so it marks every
    day from there on."""
    found = conn.execute(
        sa.text(
            """
            SELECT "timestamp"::date AS day, bool_or(event_type LIKE 'subscription\\_%') AS moves_mrr
            FROM analytics_events
            WHERE created_at > :since AND created_at <= :through AND "timestamp" < :before
              AND event_type IN ('payment_completed', 'payment_failed', 'payment_refunded',
                                 'subscription_started', 'subscription_changed', 'subscription_cancelled')
            GROUP BY 1
            """
        ),
        {"since": since, "through": through, "before": before},
    ).all()
    days = {day for day, _ in found}
    earliest_mrr_change = min((day for day, moves in found if moves), default=None)
    if earliest_mrr_change is not None:
        days |= {earliest_mrr_change + dt.timedelta(days=n) for n in range((before - earliest_mrr_change).days)}
    return days


LATE_DAY_FINDERS: dict[str, LateDays] = {
    "revenue_aggregates": late_revenue_days,
    # A late tournament event changes the day its tournament belongs to, not the day it happened.
    "tournament_aggregates": late_tournament_days,
}


def merge_into_ranges(days: set[dt.date]) -> list[tuple[dt.date, dt.date]]:
    ranges: list[tuple[dt.date, dt.date]] = []
    for day in sorted(days):
        if ranges and day - ranges[-1][1] == dt.timedelta(days=1):
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges


@dg.sensor(
    job=hourly_aggregates_job,
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def late_events_sensor(context: dg.SensorEvaluationContext, database: AnalyticsDatabase):
    """Requests the day partitions (older than yesterday) that late-arriving events change."""
    with database.engine.connect() as conn:
        now = conn.execute(sa.text("SELECT statement_timestamp() AT TIME ZONE 'UTC'")).scalar_one()
        through = now - COMMIT_LAG
        if not context.cursor:
            return dg.SensorResult(
                skip_reason="first tick: following events created from now on",
                cursor=json.dumps({"created_through": through.isoformat()}),
            )
        since = dt.datetime.fromisoformat(json.loads(context.cursor)["created_through"])
        yesterday = now.date() - dt.timedelta(days=1)
        requests = []
        for asset, find_days in LATE_DAY_FINDERS.items():
            days = {d for d in find_days(conn, since, through, yesterday) if d >= start_date()}
            for first, last in merge_into_ranges(days):
                requests.append(
                    dg.RunRequest(
                        run_key=f"{asset}:{first}..{last}:{through.isoformat()}",
                        asset_selection=[dg.AssetKey(asset)],
                        tags=partition_range_tags(first, last),
                    )
                )
    return dg.SensorResult(
        run_requests=requests, cursor=json.dumps({"created_through": through.isoformat()})
    )


defs = dg.Definitions(sensors=[late_events_sensor])
