"""The stop's cancellation of the runs in flight (`RunsInFlight.cancel`) against the daemon that
dequeues runs at the same moment. A run worker that starts on a run found CANCELED does not run
it; one that starts on a run found CANCELING marks it failed, which raises the failure alert. So a
run read as queued must go straight to CANCELED, never through CANCELING, even when the daemon
has dequeued it (STARTING) between the stop's read and its write."""

import dagster as dg
from dagster import DagsterEvent, DagsterEventType, DagsterRunStatus
from dagster._core.remote_origin import RegisteredCodeLocationOrigin, RemoteRepositoryOrigin

from analytics_pipeline.dev.shutdown import RunsInFlight


@dg.op
def one_step() -> int:
    return 1


@dg.job
def queued_job() -> None:
    one_step()


class DequeuedAfterRead:
    """The instance, but the daemon dequeues each queued run just after the stop has read the
    unfinished runs: their status becomes STARTING, as the run launcher sets it."""

    def __init__(self, instance: dg.DagsterInstance) -> None:
        self._instance = instance

    def __getattr__(self, name: str):
        return getattr(self._instance, name)

    def get_runs(self, *args, **kwargs):
        runs = self._instance.get_runs(*args, **kwargs)
        for run in runs:
            if run.status == DagsterRunStatus.QUEUED:
                starting = DagsterEvent(event_type_value=DagsterEventType.RUN_STARTING.value, job_name=run.job_name)
                self._instance.report_dagster_event(starting, run_id=run.run_id)
        return runs


def _queued(instance: dg.DagsterInstance) -> str:
    """A run in the queue, naming the job of a code location as a queued run must."""
    location = RemoteRepositoryOrigin(RegisteredCodeLocationOrigin("analytics_pipeline"), "__repository__")
    run = instance.create_run_for_job(queued_job, remote_job_origin=location.get_job_origin(queued_job.name))
    instance.report_dagster_event(
        DagsterEvent(event_type_value=DagsterEventType.RUN_ENQUEUED.value, job_name=run.job_name), run_id=run.run_id)
    assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.QUEUED
    return run.run_id


def _events(instance: dg.DagsterInstance, run_id: str) -> list[DagsterEventType]:
    return [entry.dagster_event.event_type for entry in instance.all_logs(run_id) if entry.dagster_event]


def test_a_queued_run_is_cancelled_at_once_with_nothing_left_to_wait_for(tmp_path):
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        run_id = _queued(instance)

        pending = RunsInFlight(instance).cancel()

        assert instance.get_run_by_id(run_id).status == DagsterRunStatus.CANCELED
        assert pending == 0  # nothing left to wait for


def test_a_run_dequeued_while_the_stop_cancels_it_is_cancelled_not_cancelling(tmp_path):
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        run_id = _queued(instance)

        RunsInFlight(DequeuedAfterRead(instance)).cancel()

        # The daemon did dequeue it, and the stop's write came after.
        events = _events(instance, run_id)
        assert DagsterEventType.RUN_STARTING in events
        assert instance.get_run_by_id(run_id).status == DagsterRunStatus.CANCELED
        assert DagsterEventType.RUN_CANCELING not in events
