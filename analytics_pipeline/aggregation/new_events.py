"""New events reach the aggregates within a minute: the sensor that follows commits.

Every `NEW_EVENTS_INTERVAL_SECONDS` the sensor takes a snapshot and asks every domain's declared
finder which partitions the events committed since its last tick change (analytics_pipeline/aggregation/state.py:
in commit order, whatever their `created_at` or `timestamp`): the day of a payment, every day from
a subscription event's on (MRR carries forward), the day a tournament belongs to, the months of
user_cohorts an event changes. It requests one run per aggregate over those partitions, first to
last. While a run it requested for an aggregate is still queued or running, that aggregate waits:
its cursor stays where it was, so the next tick after the run ends requests, in one run,
everything committed meanwhile (docs/ingestion.md#freshness).

A run absorbs every newly committed event into the derived state before it computes its window,
so an event committed after a tick and absorbed by a run that does not cover its day is still
requested by the next tick: the sensor's cursor is its own, independent of the states'.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence

import dagster as dg
import sqlalchemy as sa

from ..core.months import add_months, month_start
from ..core.resources import AnalyticsDatabase
from ..core.settings import start_date
from . import state
from .declarations import TouchedPartitions
from .partitions import partition_range_tags

NEW_EVENTS_INTERVAL_SECONDS = 20

# The tag on the sensor's runs naming the aggregate: one such run in flight per aggregate.
NEW_EVENTS_TAG = "analytics/new_events"

IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]

def partitions_end(step: str, today: dt.date) -> dt.date:
    """The start of the first partition after the last one (today's day, the running month)."""
    if step == "month":
        return add_months(month_start(today), 1)
    return today + dt.timedelta(days=1)


def _first_partition(step: str) -> dt.date:
    first = start_date()
    return month_start(first) if step == "month" else first


def _jobs(touched_partitions: Sequence[TouchedPartitions]) -> list:
    jobs: dict[str, object] = {}
    for touched in touched_partitions:
        jobs.setdefault(touched.job.name, touched.job)
    return list(jobs.values())


def _in_flight(instance: dg.DagsterInstance, asset: str) -> bool:
    runs = instance.get_run_records(dg.RunsFilter(tags={NEW_EVENTS_TAG: asset}, statuses=IN_FLIGHT), limit=1)
    return bool(runs)


def new_events_sensor(touched_partitions: Sequence[TouchedPartitions]) -> dg.SensorDefinition:
    """The sensor over the touched-partition finders the domains declare (the code location passes
    every domain's: analytics_pipeline/domains.py)."""

    @dg.sensor(
        jobs=_jobs(touched_partitions),
        minimum_interval_seconds=NEW_EVENTS_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def new_events_sensor(context: dg.SensorEvaluationContext, database: AnalyticsDatabase):
        """Requests, for every aggregate, one run over the partitions that the events committed since
        the last tick change; an aggregate whose previous such run is still queued or running waits
        for it, and gets everything committed meanwhile in its next run."""
        cursor: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
        requests: list[dg.RunRequest] = []
        waiting: list[str] = []
        with database.engine.connect() as conn:
            through = state.current_snapshot(conn)
            today = conn.execute(sa.text("SELECT CAST(statement_timestamp() AT TIME ZONE 'UTC' AS date)")).scalar_one()
            for touched in touched_partitions:
                since = cursor.get(touched.asset)
                if since is None:
                    # First tick: follow the events committed from now on (the schedules and a
                    # backfill cover what was there before).
                    cursor[touched.asset] = through
                    continue
                if _in_flight(context.instance, touched.asset):
                    waiting.append(touched.asset)
                    continue
                found = touched.find(conn, state.Committed((since,), through), partitions_end(touched.step, today))
                found = {p for p in found if p >= _first_partition(touched.step)}
                if found:
                    requests.append(
                        dg.RunRequest(
                            run_key=f"{touched.asset}:{through}",
                            job_name=touched.job.name,
                            asset_selection=[dg.AssetKey(touched.asset)],
                            tags={**partition_range_tags(min(found), max(found)), NEW_EVENTS_TAG: touched.asset},
                        )
                    )
                cursor[touched.asset] = through
        if waiting:
            context.log.info(f"waiting for the running new-events run of {', '.join(waiting)}")
        if not requests:
            return dg.SensorResult(
                skip_reason="no new events" + (f" (waiting: {', '.join(waiting)})" if waiting else ""),
                cursor=json.dumps(cursor),
            )
        return dg.SensorResult(run_requests=requests, cursor=json.dumps(cursor))

    return new_events_sensor
