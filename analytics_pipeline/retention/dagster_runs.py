"""Retention of Dagster's own run storage: finished runs and their event logs older than
`DAGSTER_RUN_RETENTION_DAYS` (default 7) are deleted, except those the asset history still needs.

The sensors launch a small run every minute or so; without a purge, `runs`, `run_tags` and
`event_logs` in Dagster's database grow by thousands of rows a day for good
(docs/operations.md#dagster-run-storage-retention).

- Deleted: runs that are SUCCESS, FAILURE or CANCELED and ended before the cutoff
  (`instance.delete_run`: the run, its tags and its whole event log). A run that is queued,
  starting, started or canceling is never deleted, however old.
- Kept although expired:
  - a run holding the latest materialization, the latest materialization attempt or the latest
    observation of an asset or of one asset partition. Deleting a run deletes its events, and
    Dagster 1.13 reads a partition's latest materialization, its materialized/failed status when
    the partition status cache is rebuilt (a changed partitions definition, a wipe),
    `get_materialized_partitions`, an asset's observations (the retention cleanup's report on
    `analytics_events`) and the staleness of downstream partitions from those events; only the
    asset-level latest materialization is copied into `asset_keys`. A run is superseded, and
    goes, once later runs hold all of its latest events; so at most one run per asset partition
    stays, and the hourly and new-events runs of today's partitions go a retention period after
    they are superseded.
  - a run of a backfill that has not ended: the backfill daemon reads its runs' statuses.
- Bounded: one call deletes at most `batch_size` runs and stops after `time_budget_seconds`,
  well inside the 60 s a sensor tick may take; the next tick continues.

A sensor's run key stops deduplicating once its run is deleted. No sensor of this project
depends on that after a day: keys carry the commit snapshot, the report's due time, or the
cutoff day, none of which a later tick requests again.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass

import dagster as dg

from ..core.settings import env_int

DEFAULT_RUN_RETENTION_DAYS = 7
BATCH_SIZE = 500
TIME_BUDGET_SECONDS = 30.0
RUN_RETENTION_INTERVAL_SECONDS = 3600

FINISHED_STATUSES = (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)
BACKFILL_TAG = "dagster/backfill"
# The statuses of a backfill that has ended, as stored (the values of its status enum): the list
# its backfill daemon treats as ended (BULK_ACTION_TERMINAL_STATUSES). Dagster 1.13 exports no
# public name for a backfill's status (`instance.get_backfill` returns its internal
# PartitionBackfill), hence the strings. A run of a backfill in none of them is kept.
BACKFILL_ENDED_STATUSES = frozenset({"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"})
# Storage ids per query when mapping the latest events of an asset's partitions to their runs.
_STORAGE_ID_CHUNK = 1_000


def run_retention_days() -> int:
    """Days a finished Dagster run is kept (`DAGSTER_RUN_RETENTION_DAYS`, default 7)."""
    return env_int("DAGSTER_RUN_RETENTION_DAYS", DEFAULT_RUN_RETENTION_DAYS)


@dataclass(frozen=True)
class RunPurge:
    """What one call of `delete_expired_runs` did."""

    cutoff: dt.datetime  # UTC: runs that ended before it had expired
    deleted: int
    kept: int  # expired runs looked at and kept: latest asset events, or a backfill in progress
    complete: bool  # every expired run was looked at; False: the batch or the time budget ended first

    def __str__(self) -> str:
        more = "" if self.complete else "; more on the next tick"
        return (
            f"deleted {self.deleted} finished runs that ended before {self.cutoff:%Y-%m-%d %H:%M} UTC; "
            f"kept {self.kept} that hold an asset's latest materialization or observation or belong to "
            f"a running backfill{more}"
        )


def _latest_runs_by_partition(
    instance: dg.DagsterInstance,
    asset_key: dg.AssetKey,
    event_type: dg.DagsterEventType,
    fetch: Callable[..., dg.EventRecordsResult],
) -> set[str]:
    storage_ids = sorted(
        instance.event_log_storage.get_latest_storage_id_by_partition(asset_key, event_type).values()
    )
    run_ids: set[str] = set()
    for start in range(0, len(storage_ids), _STORAGE_ID_CHUNK):
        chunk = storage_ids[start : start + _STORAGE_ID_CHUNK]
        result = fetch(dg.AssetRecordsFilter(asset_key=asset_key, storage_ids=chunk), limit=len(chunk))
        run_ids.update(record.run_id for record in result.records)
    return run_ids


def runs_holding_latest_asset_events(instance: dg.DagsterInstance) -> set[str]:
    """Ids of the runs whose event log holds the latest materialization or observation of an asset
    or of one of its partitions, or a partition's latest attempt that materialized nothing (the
    run that shows it failed): the runs the assets' current state in the UI is read from."""
    run_ids: set[str] = set()
    for record in instance.get_asset_records():
        entry = record.asset_entry
        # The latest of the asset as a whole: an unpartitioned asset's only ones.
        if entry.last_materialization_record is not None:
            run_ids.add(entry.last_materialization_record.run_id)
        if entry.last_run_id:
            run_ids.add(entry.last_run_id)
        run_ids.update(r.run_id for r in instance.fetch_observations(entry.asset_key, limit=1).records)
        run_ids |= _latest_runs_by_partition(
            instance, entry.asset_key, dg.DagsterEventType.ASSET_MATERIALIZATION, instance.fetch_materializations
        )
        run_ids |= _latest_runs_by_partition(
            instance, entry.asset_key, dg.DagsterEventType.ASSET_OBSERVATION, instance.fetch_observations
        )
        # The query the partition status cache finds failed partitions with.
        attempts = instance.event_log_storage.get_latest_asset_partition_materialization_attempts_without_materializations(
            entry.asset_key
        )
        run_ids.update(run_id for run_id, _ in attempts.values())
    return run_ids


def delete_expired_runs(
    instance: dg.DagsterInstance,
    *,
    now: dt.datetime | None = None,
    retention_days: int | None = None,
    batch_size: int = BATCH_SIZE,
    time_budget_seconds: float = TIME_BUDGET_SECONDS,
) -> RunPurge:
    """Deletes, oldest first, up to `batch_size` finished runs (with their event logs) that ended
    more than `retention_days` (default `run_retention_days()`) before `now`, keeping those that
    hold an asset's or a partition's latest materialization, attempt or observation and those of a
    backfill that has not ended. `RunPurge.deleted` is the number deleted."""
    now = now or dt.datetime.now(dt.UTC)
    if retention_days is None:
        retention_days = run_retention_days()
    cutoff = now - dt.timedelta(days=retention_days)
    deadline = time.monotonic() + time_budget_seconds
    expired = dg.RunsFilter(statuses=list(FINISHED_STATUSES), updated_before=cutoff)

    protected: set[str] | None = None
    backfill_running: dict[str, bool] = {}
    deleted = kept = 0
    # The last run looked at and kept: every expired run after it so far has been deleted, so the
    # next page continues from it (a deleted run's id cannot serve as a cursor).
    cursor: str | None = None
    while True:
        if deleted >= batch_size or time.monotonic() >= deadline:
            return RunPurge(cutoff, deleted, kept, complete=False)
        page = instance.get_run_records(expired, limit=batch_size, ascending=True, cursor=cursor)
        if not page:
            return RunPurge(cutoff, deleted, kept, complete=True)
        if protected is None:
            # Read once expired runs exist, after they were listed: a materialization written
            # meanwhile can only supersede one, never make a listed run the latest.
            protected = runs_holding_latest_asset_events(instance)
        for record in page:
            if deleted >= batch_size or time.monotonic() >= deadline:
                return RunPurge(cutoff, deleted, kept, complete=False)
            run = record.dagster_run
            ended_at = record.end_time or record.update_timestamp.timestamp()
            backfill_id = run.tags.get(BACKFILL_TAG)
            if backfill_id and backfill_id not in backfill_running:
                backfill = instance.get_backfill(backfill_id)
                backfill_running[backfill_id] = (
                    backfill is not None and backfill.status.value not in BACKFILL_ENDED_STATUSES
                )
            if (
                ended_at >= cutoff.timestamp()
                or run.run_id in protected
                or (backfill_id and backfill_running[backfill_id])
            ):
                kept += 1
                cursor = run.run_id
                continue
            instance.delete_run(run.run_id)
            deleted += 1
        if len(page) < batch_size:
            return RunPurge(cutoff, deleted, kept, complete=True)


@dg.sensor(
    minimum_interval_seconds=RUN_RETENTION_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Hourly: deletes finished Dagster runs and their event logs older than "
        "DAGSTER_RUN_RETENTION_DAYS (default 7), at most 500 per tick, keeping the runs that "
        "hold an asset partition's latest materialization, attempt or observation. Requests no runs."
    ),
)
def dagster_run_retention_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    purge = delete_expired_runs(context.instance)
    context.log.info(str(purge))
    return dg.SkipReason(str(purge))


defs = dg.Definitions(sensors=[dagster_run_retention_sensor])
