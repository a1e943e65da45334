"""How `analytics-pipeline dev` stops: whatever ends it (Ctrl-C, SIGINT, SIGTERM, SIGHUP, an error,
dagster dev exiting), the runs in flight are cancelled, then Dagster's processes, the API and the
embedded servers stop, in that order, so that no process outlives it and nothing is printed after
its last line (docs/operations.md#the-development-stack-make-dev)."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
import urllib.request

import click

# The longest the stop (`Stack.stop`) waits: for Dagster to finish starting (its code server,
# interrupted while it loads the definitions, prints a traceback); for every process of dagster
# dev's session to exit, the cancelled runs' workers included (a step process still importing the
# definitions ends only then), then of the API's, before SIGTERM to what is left and SIGKILL
# KILL_SECONDS later; for a run in this process (the demo's state). Another Ctrl-C ends the waits.
STARTING_SECONDS = 60
DAGSTER_STOP_SECONDS = 45
API_STOP_SECONDS = 15
HERE_STOP_SECONDS = 15
KILL_SECONDS = 5
STOP_QUERY_SECONDS = 10  # for an answer of the webserver's GraphQL API while it is up
STOPPED_MESSAGE = "`analytics-pipeline dev` stopped while the run was in flight."
# The tag the default run launcher gives a run it launched through a code server (whose terminate
# then reaches the run's worker). Dagster 1.13 exports no name for it (dagster._core.storage.tags'
# GRPC_INFO_TAG is private): its stored key, compared as a string.
LAUNCHED_BY_CODE_SERVER_TAG = ".dagster/grpc_info"
# What stops `dev`: Ctrl-C, a service manager's or `kill`'s SIGTERM, and the SIGHUP of a terminal
# that closes (unless started under `nohup`, which ignores it: then it keeps running).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class StopRequest:
    """Ctrl-C, SIGINT, SIGTERM and SIGHUP. Until the stack is up, one interrupts what runs (a
    migration, the demo's load) as Ctrl-C does; from then on, the first asks for the stop and any
    other one hurries it: its waits end at once and what is left is killed."""

    def __init__(self) -> None:
        self.requested = False
        self.hurried = False
        self.signals = [s for s in STOP_SIGNALS if not (s == signal.SIGHUP and _ignored(s))]

    def interrupt(self) -> None:
        for signum in self.signals:
            signal.signal(signum, self._interrupt)

    def install(self) -> None:
        for signum in self.signals:
            signal.signal(signum, self._handle)

    def _interrupt(self, signum, frame) -> None:
        _hung_up(signum)
        raise KeyboardInterrupt

    def _handle(self, signum, frame) -> None:
        _hung_up(signum)
        self.hurried = self.requested
        self.requested = True

    def wait_until(self, done, seconds: float) -> bool:
        """Whether `done()` came true within `seconds`, unless the stop is hurried."""
        deadline = time.monotonic() + seconds
        while not done():
            if self.hurried or time.monotonic() > deadline:
                return False
            time.sleep(0.5)
        return True


def start_quiet_thread(target, *args) -> threading.Thread:
    """A daemon thread of this process whose subprocesses do not hear Ctrl-C: the demo's state run,
    which executes here, starts helpers for each step (Dagster's compute-log capture: `tail` and a
    Python watcher of it) in this process group, the terminal's foreground one, which Ctrl-C's
    SIGINT reaches as a whole. The watcher would print a KeyboardInterrupt traceback, and `tail`,
    which mirrors to the terminal this process's output while the step captures it into its log,
    would stop doing so: the stop's first lines would be lost. SIGINT is blocked in the thread, a
    mask its subprocesses inherit; the run ends them, or the stop (`Stack.stop`). This process
    still hears SIGINT: its other threads do not block it."""

    def quiet() -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        target(*args)

    thread = threading.Thread(target=quiet, daemon=True)
    thread.start()
    return thread


class UntilStop:
    """dagster dev as the demo's follower sees it: ended from the moment the stop begins, so that
    the follower stops following the backfill and prints nothing more."""

    def __init__(self, process: subprocess.Popen, stopping: StopRequest) -> None:
        self.process = process
        self.stopping = stopping

    def poll(self) -> int | None:
        return 0 if self.stopping.requested else self.process.poll()


class Stack:
    """What `dev` started, stopped in this order however it ends (Ctrl-C, SIGINT, SIGTERM, SIGHUP,
    an error, dagster dev exiting), so that no process outlives it and nothing is printed after its
    last line:

    1. the runs, while the daemon and the code server are up to carry it out: a queued run leaves
       the queue, a running one is terminated, a backfill in progress is cancelled, as the UI's
       Terminate and Cancel do (`RunsInFlight`);
    2. dagster dev and every process of its session: the webserver, the daemon, the code servers,
       the run workers and their step processes, killed if still there after a grace period;
       then the runs left unfinished are marked cancelled;
    3. the Dashboard API;
    4. the embedded Redis and PostgreSQL servers, which all of the above use, last.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.stopping = StopRequest()
        self.dagster: subprocess.Popen | None = None
        self.api: subprocess.Popen | None = None
        self._opening: threading.Thread | None = None
        self._instance = None

    def __enter__(self) -> Stack:
        self.stopping.interrupt()
        return self

    def __exit__(self, kind, error, traceback) -> bool:
        self.stop()
        return kind is KeyboardInterrupt  # interrupted before the stack was up: stopped all the same

    def open_instance(self, dagster_home) -> None:
        """Dagster's instance, with which the stop cancels the runs: opened (and dagster imported)
        while the stack starts."""

        def open_instance() -> None:
            from dagster import DagsterInstance

            with contextlib.suppress(Exception):  # the stop goes on without: `RunsInFlight` is skipped
                self._instance = DagsterInstance.from_config(str(dagster_home))

        self._opening = threading.Thread(target=open_instance, daemon=True)
        self._opening.start()

    def until_stop(self) -> UntilStop:
        return UntilStop(self.dagster, self.stopping)

    def wait(self) -> None:
        """Until a stop is asked for or dagster dev exits."""
        while not self.stopping.requested and self.dagster.poll() is None:
            time.sleep(0.5)
        if not self.stopping.requested:
            click.echo(f"dagster dev exited with code {self.dagster.returncode}", err=True)

    def stop(self) -> None:
        began = time.monotonic()
        self.stopping.install()  # from here a signal hurries the stop
        self.stopping.requested = True
        stopped = []
        runs = None
        if self.dagster is not None:
            click.echo("stopping: the runs in flight, Dagster, the API, then the embedded servers "
                       "(Ctrl-C again to hurry)")
            runs = _attempt("Dagster", self._stop_dagster)
            stopped.append("Dagster")
        if self.api is not None:
            _attempt("the Dashboard API",
                     lambda: _stop_session(self.api, "the Dashboard API", API_STOP_SECONDS, self.stopping))
            stopped.append("the Dashboard API")
        if runs is not None:
            # The demo's state, run in this process; then the runs left are marked cancelled.
            self.stopping.wait_until(lambda: not runs.here(), HERE_STOP_SECONDS)
            cancelled = runs.finish()
            if cancelled:
                stopped[0] += f" ({cancelled} run{'s' if cancelled > 1 else ''} cancelled)"
            with contextlib.suppress(Exception):
                runs.instance.dispose()
        # What still runs in this process (the demo's state, its follower), cut short by the
        # database's stop, must not print the errors it meets before this process exits.
        logging.disable(logging.CRITICAL)
        threading.excepthook = lambda args: None
        if not os.environ.get("REDIS_URL"):
            from ..core.redis_server import stop_embedded_redis

            if _attempt("the embedded Redis", stop_embedded_redis):
                stopped.append("the embedded Redis")
        if not os.environ.get("DATABASE_URL"):
            from ..core.postgres_server import stop_embedded

            if _attempt("the embedded PostgreSQL", stop_embedded):
                stopped.append("the embedded PostgreSQL")
        _stop_helpers(self.stopping)
        if stopped:
            listed = ", ".join(stopped[:-1]) + (" and " if len(stopped) > 1 else "") + stopped[-1]
            click.echo(f"stopped {listed} in {time.monotonic() - began:.0f} s")

    def _stop_dagster(self) -> RunsInFlight | None:
        dagster, stopping = self.dagster, self.stopping
        if dagster.poll() is None and not _serving(self.port):
            click.echo("waiting for Dagster to finish starting")
            stopping.wait_until(lambda: dagster.poll() is not None or _serving(self.port), STARTING_SECONDS)
        if self._opening is not None:
            stopping.wait_until(lambda: not self._opening.is_alive(), STARTING_SECONDS)
        from .demo import DagsterUI

        ui = DagsterUI(f"http://127.0.0.1:{self.port}", timeout=STOP_QUERY_SECONDS)
        runs = RunsInFlight(self._instance, ui) if self._instance is not None else None
        if runs is not None:
            pending = runs.cancel()
            if pending:
                click.echo(f"cancelling {pending} run{'s' if pending > 1 else ''} in flight")
        # Then dagster dev stops its webserver and daemon while the runs end, and its code servers,
        # which exit once their runs have. Until the daemon has stopped it may launch a run, which
        # is cancelled as the others.
        _stop_session(dagster, "Dagster", DAGSTER_STOP_SECONDS, stopping, meanwhile=runs.cancel if runs else None)
        return runs


class RunsInFlight:
    """The runs in Dagster's storage that have not finished, cancelled as the UI's Terminate does:
    a queued run leaves the queue, cancelled; a running one is terminated by its code server (the
    run launcher's terminate), and its worker reports it cancelled. The backfills in progress are
    cancelled as the UI's Cancel does, so that they launch no more runs: the daemon, until it
    stops, or at the next start, marks them cancelled once their runs have ended.

    A run launched without a code server executes in the process that launched it: this one's
    (the demo's state) cannot be terminated, only waited for."""

    def __init__(self, instance, ui=None) -> None:
        self.instance = instance
        self.ui = ui  # the webserver's GraphQL API (demo.DagsterUI), through which backfills are cancelled
        self.backfills_cancelled = False
        self.asked: dict[str, bool] = {}  # run id: whether it is being cancelled by its code server

    def _unfinished(self) -> list:
        from dagster import DagsterRunStatus, RunsFilter

        unfinished = [
            DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING,
            DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING,
        ]
        return self.instance.get_runs(RunsFilter(statuses=unfinished))

    def _cancel_backfills(self) -> None:
        """Cancel the backfills in progress through the webserver's GraphQL API, as the UI's Cancel
        does: Dagster 1.13 has no public Python API for a backfill's status."""
        import requests

        from .demo import BACKFILLS_REQUESTED, CANCEL_BACKFILL

        if self.ui is None:
            return
        try:
            listed = self.ui.query(BACKFILLS_REQUESTED)["partitionBackfillsOrError"]
        except requests.ConnectionError:  # no webserver: the daemon goes on with them at the next start
            return
        if "results" not in listed:
            raise RuntimeError(f"{listed['__typename']}: {listed.get('message')}")
        for backfill in listed["results"]:
            cancelled = self.ui.query(CANCEL_BACKFILL, id=backfill["id"])["cancelPartitionBackfill"]
            if cancelled["__typename"] != "CancelBackfillSuccess":
                raise RuntimeError(f"{cancelled['__typename']}: {cancelled.get('message')}")

    def cancel(self) -> int:
        """Cancel the unfinished runs not asked yet; returns how many runs are yet to end."""
        from dagster import DagsterRunStatus

        if not self.backfills_cancelled:
            # Once, first, so that they launch no more runs.
            self.backfills_cancelled = True
            _attempt("the backfills in progress", self._cancel_backfills)
        pending = 0
        with contextlib.suppress(Exception):  # no storage: nothing to cancel
            for run in self._unfinished():
                if run.run_id in self.asked:
                    pass
                elif run.status == DagsterRunStatus.QUEUED:
                    # Straight from the queue to cancelled. The daemon may dequeue it meanwhile: its
                    # worker then finds it cancelled and does not start it. The coordinator's
                    # cancel_run would read it again and, found starting, terminate it: a worker
                    # starting on a run that is cancelling marks it failed.
                    self.instance.report_run_canceled(run, message=STOPPED_MESSAGE)
                    self.asked[run.run_id] = False
                elif run.status == DagsterRunStatus.STARTED and LAUNCHED_BY_CODE_SERVER_TAG in run.tags:
                    # A run still STARTING is left until it has started, for the same reason.
                    try:
                        self.asked[run.run_id] = bool(self.instance.run_launcher.terminate(run.run_id))
                    except Exception:  # its code server is gone: marked cancelled in `finish`
                        self.asked[run.run_id] = False
                starting = run.status in (DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING)
                pending += self.asked.get(run.run_id, starting)
        return pending

    def here(self) -> list:
        """The unfinished runs that execute in this process."""
        from dagster import DagsterEventType

        found = []
        with contextlib.suppress(Exception):
            for run in self._unfinished():
                if LAUNCHED_BY_CODE_SERVER_TAG in run.tags or run.run_id in self.asked:
                    continue
                # Its worker's pid, which an in-process run records as it starts its steps.
                for entry in self.instance.all_logs(run.run_id, of_type=DagsterEventType.ENGINE_EVENT):
                    data = entry.dagster_event.engine_event_data if entry.dagster_event else None
                    pid = data.metadata.get("pid") if data else None
                    if pid is not None:
                        if getattr(pid, "value", None) == str(os.getpid()):
                            found.append(run)
                        break
        return found

    def finish(self) -> int:
        """Mark cancelled the runs left unfinished whose processes are gone: those of the code
        servers and the queue, and this process's, which ends; returns how many runs the stop
        cancelled in all."""
        from dagster import DagsterRunStatus, RunsFilter

        with contextlib.suppress(Exception):
            here = {run.run_id for run in self.here()}
            for run in self._unfinished():
                queued = run.status in (DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED)
                launched = LAUNCHED_BY_CODE_SERVER_TAG in run.tags
                if queued or launched or run.run_id in self.asked or run.run_id in here:
                    self.instance.report_run_canceled(run, message=STOPPED_MESSAGE)
                    self.asked.setdefault(run.run_id, False)
            if self.asked:
                filter = RunsFilter(run_ids=list(self.asked), statuses=[DagsterRunStatus.CANCELED])
                return len(self.instance.get_runs(filter))
        return 0


def _ignored(signum: int) -> bool:
    return signal.getsignal(signum) == signal.SIG_IGN


def _hung_up(signum: int) -> None:
    """After SIGHUP, a terminal that has closed: writing to it fails (EIO), which would end the
    stop at its first line, so what `dev` prints from then on goes nowhere."""
    if signum != signal.SIGHUP:
        return
    with open(os.devnull, "w") as devnull:
        for stream in (1, 2):
            if os.isatty(stream):
                os.dup2(devnull.fileno(), stream)


def _attempt(what: str, stop):
    """`stop()`, or a line saying why it failed: the stop goes on with the rest."""
    try:
        return stop()
    except Exception as exc:
        click.echo(f"could not stop {what}: {type(exc).__name__}: {exc}", err=True)
        return None


def _stop_helpers(stopping: StopRequest) -> None:
    """What this process started in its own process group and still runs: the compute-log helpers
    of the run here (`start_quiet_thread`), while its step captures this process's output into its
    log (`tail` mirrors that to the terminal). A run cut short by the database's stop ends them as
    it unwinds, its output given back; those left after KILL_SECONDS get SIGTERM, then SIGKILL,
    rather than outlive this process for a second."""
    import psutil

    def left() -> list:
        found = []
        with contextlib.suppress(psutil.Error):
            for process in psutil.Process().children(recursive=True):
                with contextlib.suppress(OSError, psutil.Error):
                    if os.getpgid(process.pid) == os.getpgrp() and process.status() != psutil.STATUS_ZOMBIE:
                        found.append(process)
        return found

    if stopping.wait_until(lambda: not left(), KILL_SECONDS):
        return
    for process in left():
        with contextlib.suppress(psutil.Error):
            process.terminate()
    if not stopping.wait_until(lambda: not left(), KILL_SECONDS):
        for process in left():
            with contextlib.suppress(psutil.Error):
                process.kill()


def _serving(port: int) -> bool:
    """Whether the Dagster webserver answers (its code server has loaded the definitions)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _session(leader: subprocess.Popen) -> list:
    """The processes still running in the session of `leader` (started with start_new_session):
    it and all it started, also those whose parent has exited. The embedded servers detach into
    sessions of their own (pg_ctl, Redis' daemonize) and are not among them."""
    import psutil

    leader.poll()  # reaped once it exits
    found = []
    for process in psutil.process_iter():
        with contextlib.suppress(OSError, psutil.Error):
            if os.getsid(process.pid) == leader.pid and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
    return found


def _describe(process) -> str:
    """What a process is, in a word or two: `dagster code-server`, a run worker..."""
    import psutil

    try:
        args = process.cmdline()
    except psutil.Error:
        return "exited"
    if "-m" in args:
        return " ".join(args[args.index("-m") + 1:][:2])
    code = args[args.index("-c") + 1] if "-c" in args[:-1] else ""
    if "resource_tracker" in code:
        return "multiprocessing's resource tracker"
    if "spawn_main" in code:
        return "a run or step worker"
    return os.path.basename(args[0]) if args else process.name()


def _stop_session(leader: subprocess.Popen, name: str, seconds: float, stopping: StopRequest,
                  meanwhile=None) -> None:
    """SIGINT to `leader`, a graceful stop, then wait for every process of its session to exit;
    after `seconds` (or at once if the stop is hurried), SIGTERM to those left, and SIGKILL."""
    import psutil

    if leader.poll() is None:
        leader.send_signal(signal.SIGINT)

    def gone() -> bool:
        if meanwhile is not None:
            meanwhile()
        return not _session(leader)

    if not stopping.wait_until(gone, seconds):
        left = _session(leader)
        if left:
            click.echo(f"killing what of {name} still runs "
                       f"{'when hurried' if stopping.hurried else f'{seconds:.0f} s after its stop'}: "
                       + ", ".join(f"{process.pid} ({_describe(process)})" for process in left), err=True)
        for process in left:
            with contextlib.suppress(psutil.Error):
                process.terminate()
        stopping.wait_until(lambda: not _session(leader), KILL_SECONDS)
        for process in _session(leader):
            with contextlib.suppress(psutil.Error):
                process.kill()
        deadline = time.monotonic() + KILL_SECONDS  # a moment for SIGKILL to take effect
        while _session(leader) and time.monotonic() < deadline:
            time.sleep(0.1)
    leader.wait()
