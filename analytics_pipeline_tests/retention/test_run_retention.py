"""Retention of Dagster's run storage (analytics_pipeline/retention/dagster_runs.py) on real instances, one
on SQLite and one on PostgreSQL as in production: runs are executed, created and ended at frozen
past times, then purged; the tick retention of deploy/dagster.yaml is bounded."""

import datetime as dt
import uuid
from collections.abc import Iterator

import dagster as dg
import pytest
import yaml
from dagster._core.definitions.run_request import InstigatorType
from dagster._core.execution.backfill import BULK_ACTION_TERMINAL_STATUSES, BulkActionStatus, PartitionBackfill
from dagster._core.instance.config import get_default_tick_retention_settings, get_tick_retention_settings
from dagster._core.remote_origin import RegisteredCodeLocationOrigin, RemoteRepositoryOrigin
from dagster._core.storage.partition_status_cache import get_and_update_asset_status_cache_value
from dagster._core.test_utils import freeze_time
from sqlalchemy.engine import make_url

from analytics_pipeline.aggregation.partitions import partition_range_tags
from analytics_pipeline.core.settings import PROJECT_DIR, ConfigError
from analytics_pipeline.retention import dagster_runs as housekeeping
from analytics_pipeline.retention.dagster_runs import (
    dagster_run_retention_sensor,
    delete_expired_runs,
    run_retention_days,
)

NOW = dt.datetime(2026, 6, 30, 12, tzinfo=dt.UTC)
EXPIRED = NOW - dt.timedelta(days=30)  # well past the default 7 days
RECENT = NOW - dt.timedelta(days=1)

days = dg.DailyPartitionsDefinition(start_date="2026-01-01", timezone="UTC")


@dg.asset(partitions_def=days)
def day_totals() -> None:
    pass


@dg.asset
def summary() -> None:
    pass


@dg.asset(partitions_def=days)
def broken_day() -> None:
    raise RuntimeError("division by zero in the MRR identity")


@dg.op
def deliver() -> None:
    pass


@dg.op
def refuse() -> None:
    raise RuntimeError("the mail server refused")


@dg.op
def report_cleanup(context: dg.OpExecutionContext) -> None:
    # As the retention cleanup reports each purge on the asset spec it does not materialize.
    context.log_event(dg.AssetObservation(asset_key="analytics_events", metadata={"rows_deleted": 3}))


cleanup_job = dg.GraphDefinition(name="cleanup", node_defs=[report_cleanup]).to_job()
delivery_job = dg.GraphDefinition(name="delivery", node_defs=[deliver]).to_job()
failing_job = dg.GraphDefinition(name="failing", node_defs=[refuse]).to_job()


@pytest.fixture(params=["sqlite", "postgres"])
def instance(request) -> Iterator[dg.DagsterInstance]:
    if request.param == "sqlite":
        with dg.instance_for_test() as instance:
            yield instance
        return
    url = make_url(request.getfixturevalue("empty_db_url")).set(drivername="postgresql+psycopg2")
    storage = {"postgres": {"postgres_url": url.render_as_string(hide_password=False)}}
    with dg.instance_for_test(overrides={"storage": storage}) as instance:
        yield instance


def _materialize(instance, at: dt.datetime, asset, partition: str | None = None, tags=None) -> str:
    with freeze_time(at):
        result = dg.materialize([asset], instance=instance, partition_key=partition, tags=tags, raise_on_error=False)
    assert result.success == (asset is not broken_day)
    return result.run_id


def _execute(instance, at: dt.datetime, job: dg.JobDefinition, tags=None) -> str:
    with freeze_time(at):
        return job.execute_in_process(instance=instance, tags=tags, raise_on_error=False).run_id


# The event that moves a run into each unfinished status, as the queue and the workers report it.
UNFINISHED = {
    dg.DagsterRunStatus.NOT_STARTED: None,
    dg.DagsterRunStatus.QUEUED: dg.DagsterEventType.RUN_ENQUEUED,
    dg.DagsterRunStatus.STARTING: dg.DagsterEventType.RUN_STARTING,
    dg.DagsterRunStatus.STARTED: dg.DagsterEventType.RUN_START,
    dg.DagsterRunStatus.CANCELING: dg.DagsterEventType.RUN_CANCELING,
}


def _left_in(instance, at: dt.datetime, status: dg.DagsterRunStatus) -> str:
    """A run left in `status` since `at`: one the queue or a worker has not finished. Like a run a
    sensor requests, it names the job of a code location (a queued run must)."""
    location = RemoteRepositoryOrigin(RegisteredCodeLocationOrigin("analytics_pipeline"), "__repository__")
    with freeze_time(at):
        run = instance.create_run_for_job(delivery_job, remote_job_origin=location.get_job_origin(delivery_job.name))
        if UNFINISHED[status] is not None:
            event = dg.DagsterEvent(event_type_value=UNFINISHED[status].value, job_name=run.job_name)
            instance.report_dagster_event(event, run_id=run.run_id)
    return run.run_id


def _canceled(instance, at: dt.datetime) -> str:
    with freeze_time(at):
        run = instance.create_run_for_job(delivery_job)
        instance.report_run_canceled(run)
    return run.run_id


def _exists(instance, run_id: str) -> bool:
    return instance.get_run_by_id(run_id) is not None


def test_deletes_expired_finished_runs_with_their_event_logs_and_keeps_the_rest(instance):
    superseded_day = _materialize(instance, EXPIRED, day_totals, "2026-05-01")
    latest_of_its_day = _materialize(instance, EXPIRED, day_totals, "2026-05-02")
    superseded_summary = _materialize(instance, EXPIRED, summary)
    failed = _execute(instance, EXPIRED, failing_job)
    succeeded = _execute(instance, EXPIRED, delivery_job)
    canceled = _canceled(instance, EXPIRED)
    unfinished = {status: _left_in(instance, EXPIRED, status) for status in UNFINISHED}
    recent = [
        _materialize(instance, RECENT, day_totals, "2026-05-01"),
        _materialize(instance, RECENT, summary),
        _execute(instance, RECENT, failing_job),
        _canceled(instance, RECENT),
    ]
    expired = [superseded_day, superseded_summary, failed, succeeded, canceled]
    assert instance.get_run_by_id(failed).status == dg.DagsterRunStatus.FAILURE
    assert all(instance.all_logs(run_id) for run_id in expired)

    purge = delete_expired_runs(instance, now=NOW)

    assert (purge.deleted, purge.kept, purge.complete) == (5, 1, True)
    assert purge.cutoff == NOW - dt.timedelta(days=7)
    for run_id in expired:
        assert not _exists(instance, run_id)
        assert instance.all_logs(run_id) == []
    for run_id in [latest_of_its_day, *unfinished.values(), *recent]:
        assert _exists(instance, run_id)
    assert {status: instance.get_run_by_id(r).status for status, r in unfinished.items()} == {s: s for s in UNFINISHED}
    assert delete_expired_runs(instance, now=NOW).deleted == 0


def test_every_partition_keeps_its_latest_materialization_and_status(instance):
    # All three runs of day_totals expired. The range run is superseded on 2026-05-01 but still
    # the latest of 2026-05-02, so it stays with its event log; the run in between holds nothing
    # latest any more and goes.
    range_run = _materialize(instance, EXPIRED, day_totals, tags=partition_range_tags(dt.date(2026, 5, 1), dt.date(2026, 5, 2)))
    earlier = _materialize(instance, EXPIRED + dt.timedelta(days=1), day_totals, "2026-05-01")
    latest_of_may_1 = _materialize(instance, EXPIRED + dt.timedelta(days=2), day_totals, "2026-05-01")
    latest_summary = _materialize(instance, EXPIRED, summary)
    # Failed attempts: the latest of each partition is what shows the partition as failed.
    earlier_failure = _materialize(instance, EXPIRED, broken_day, "2026-05-01")
    latest_failure = _materialize(instance, EXPIRED + dt.timedelta(days=1), broken_day, "2026-05-01")
    other_failure = _materialize(instance, EXPIRED + dt.timedelta(days=2), broken_day, "2026-05-02")

    purge = delete_expired_runs(instance, now=NOW)

    assert [_exists(instance, r) for r in (earlier, earlier_failure)] == [False, False]
    kept = (range_run, latest_of_may_1, latest_summary, latest_failure, other_failure)
    assert [_exists(instance, r) for r in kept] == [True] * 5
    assert (purge.deleted, purge.kept) == (2, 5)

    def latest_run(partition: str | None, asset=day_totals) -> str:
        records_filter = dg.AssetRecordsFilter(asset_key=asset.key, asset_partitions=[partition] if partition else None)
        return instance.fetch_materializations(records_filter, limit=1).records[0].run_id

    assert latest_run("2026-05-01") == latest_of_may_1
    assert latest_run("2026-05-02") == range_run
    assert latest_run(None, summary) == latest_summary
    assert instance.get_latest_materialization_event(summary.key).run_id == latest_summary
    # The partition status the UI shows, rebuilt from the event log as after a change of the
    # partitions definition: both partitions are still materialized.
    assert instance.get_materialized_partitions(day_totals.key) == {"2026-05-01", "2026-05-02"}
    instance.wipe_asset_cached_status([day_totals.key, broken_day.key])
    status = get_and_update_asset_status_cache_value(instance, day_totals.key, days)
    assert status.deserialize_materialized_partition_subsets(days).get_partition_keys() == ["2026-05-01", "2026-05-02"]
    assert status.deserialize_failed_partition_subsets(days).get_partition_keys() == []
    failed = get_and_update_asset_status_cache_value(instance, broken_day.key, days)
    assert failed.deserialize_failed_partition_subsets(days).get_partition_keys() == ["2026-05-01", "2026-05-02"]


def test_an_asset_keeps_its_latest_observation(instance):
    earlier = _execute(instance, EXPIRED, cleanup_job)
    latest = _execute(instance, EXPIRED + dt.timedelta(days=1), cleanup_job)

    assert (delete_expired_runs(instance, now=NOW).deleted, _exists(instance, earlier)) == (1, False)
    observations = instance.fetch_observations(dg.AssetKey("analytics_events"), limit=5).records
    assert [(o.run_id, o.asset_observation.metadata["rows_deleted"].value) for o in observations] == [(latest, 3)]


def test_the_ended_backfill_statuses_are_those_of_dagsters_backfill_daemon():
    """The pipeline compares a backfill's stored status with strings (Dagster exports no name for
    them): the same as the statuses Dagster's daemon treats as ended, and each a status."""
    assert housekeeping.BACKFILL_ENDED_STATUSES == {status.value for status in BULK_ACTION_TERMINAL_STATUSES}
    assert housekeeping.BACKFILL_ENDED_STATUSES <= {status.value for status in BulkActionStatus}


def test_keeps_the_runs_of_a_backfill_that_has_not_ended(instance):
    def add_backfill(status: BulkActionStatus) -> str:
        backfill = PartitionBackfill.from_asset_partitions(
            backfill_id=uuid.uuid4().hex[:8],
            asset_graph=dg.Definitions(assets=[day_totals]).resolve_asset_graph(),
            partition_names=["2026-05-01"],
            asset_selection=[day_totals.key],
            backfill_timestamp=EXPIRED.timestamp(),
            tags={},
            dynamic_partitions_store=instance,
            all_partitions=False,
            title=None,
            description=None,
            run_config=None,
        )
        instance.add_backfill(backfill.with_status(status))
        return backfill.backfill_id

    running = add_backfill(BulkActionStatus.REQUESTED)
    ended = add_backfill(BulkActionStatus.COMPLETED_FAILED)
    of_running = _execute(instance, EXPIRED, failing_job, tags={"dagster/backfill": running})
    of_ended = _execute(instance, EXPIRED, failing_job, tags={"dagster/backfill": ended})

    purge = delete_expired_runs(instance, now=NOW)

    assert (purge.deleted, purge.kept) == (1, 1)
    assert _exists(instance, of_running) and not _exists(instance, of_ended)


def test_deletes_in_bounded_batches_past_the_runs_it_keeps(instance):
    kept = _materialize(instance, EXPIRED, day_totals, "2026-05-01")  # the oldest, and kept
    runs = [_execute(instance, EXPIRED + dt.timedelta(minutes=m), delivery_job) for m in range(5)]

    first = delete_expired_runs(instance, now=NOW, batch_size=2)
    second = delete_expired_runs(instance, now=NOW, batch_size=2)
    third = delete_expired_runs(instance, now=NOW, batch_size=2)

    assert [(p.deleted, p.complete) for p in (first, second, third)] == [(2, False), (2, False), (1, True)]
    assert [_exists(instance, r) for r in runs] == [False] * 5
    assert _exists(instance, kept)
    out_of_time = delete_expired_runs(instance, now=NOW + dt.timedelta(days=400), time_budget_seconds=0)
    assert (out_of_time.deleted, out_of_time.complete) == (0, False)


def test_retention_days_from_the_environment(monkeypatch):
    monkeypatch.delenv("DAGSTER_RUN_RETENTION_DAYS", raising=False)
    assert run_retention_days() == housekeeping.DEFAULT_RUN_RETENTION_DAYS == 7
    monkeypatch.setenv("DAGSTER_RUN_RETENTION_DAYS", "30")
    assert run_retention_days() == 30
    for bad in ("0", "-3", "seven", "1.5", ""):
        monkeypatch.setenv("DAGSTER_RUN_RETENTION_DAYS", bad)
        with pytest.raises(ConfigError) as refused:
            run_retention_days()
        message = str(refused.value)
        assert message.startswith("DAGSTER_RUN_RETENTION_DAYS must be a whole number >= 1")
        assert "\n" not in message


def test_sensor_deletes_through_its_instance_with_the_configured_retention(instance, monkeypatch):
    now = dt.datetime.now(dt.UTC)
    four_days_old = _execute(instance, now - dt.timedelta(days=4), delivery_job)
    two_days_old = _execute(instance, now - dt.timedelta(days=2), delivery_job)
    monkeypatch.setenv("DAGSTER_RUN_RETENTION_DAYS", "3")

    result = dagster_run_retention_sensor.evaluate_tick(dg.build_sensor_context(instance=instance))

    assert result.run_requests == []
    assert result.skip_message.startswith("deleted 1 finished runs that ended before")
    assert not _exists(instance, four_days_old) and _exists(instance, two_days_old)


def test_sensor_refuses_an_invalid_retention_in_one_line(instance, monkeypatch):
    monkeypatch.setenv("DAGSTER_RUN_RETENTION_DAYS", "a week")
    with pytest.raises(ConfigError, match="^DAGSTER_RUN_RETENTION_DAYS must be a whole number >= 1, got 'a week'$"):
        dagster_run_retention_sensor.evaluate_tick(dg.build_sensor_context(instance=instance))


def test_code_location_sensor_is_housekeeping_only():
    assert housekeeping.defs.resolve_sensor_def("dagster_run_retention_sensor") is dagster_run_retention_sensor
    assert dagster_run_retention_sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert dagster_run_retention_sensor.minimum_interval_seconds == 3600


def _sensor_tick_retention(path) -> dict:
    settings = yaml.safe_load(path.read_text())
    return get_tick_retention_settings(
        settings["retention"]["sensor"], get_default_tick_retention_settings(InstigatorType.SENSOR)
    )


def test_sensor_ticks_of_every_status_are_purged():
    """A sensor ticking every 20 s records over 4,000 ticks a day: none is kept forever."""
    retention = _sensor_tick_retention(PROJECT_DIR / "deploy" / "dagster.yaml")
    assert all(days > 0 for days in retention.values()), retention
    helm = yaml.safe_load((PROJECT_DIR / "deploy" / "helm-values.yaml").read_text())["retention"]["sensor"]
    assert {status.value.lower(): days for status, days in retention.items()} == helm["purgeAfterDays"]
