"""Ctrl-C (SIGINT to the process group of `analytics-pipeline dev`) or SIGTERM stops the stack
cleanly at any moment: while the first start's backfill runs are in flight, dev cancels them,
stops Dagster's processes (code servers and run workers included), the API, then the embedded
Redis and PostgreSQL; it exits within a bound, no process outlives it, nothing is printed after
its last line, and the next start on the same home is clean and finishes the demo: every
aggregate green, each partition materialized by a run that succeeded. A Ctrl-C while the demo's
state runs in dev's own process prints no traceback. A second signal hurries the stop."""

import contextlib
import datetime as dt
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import psycopg
import pytest
import requests

from analytics_pipeline.core.settings import PROJECT_DIR

from ..helpers import free_port
from .test_dev_command import _months_between, assert_green_first_look, demo_first_day

# Deadlines for a loaded machine. On a quiet one the first runs are in flight about a minute
# after the start, and a stop takes 10 to 20 s.
FIRST_RUNS_SECONDS = 300
READY_SECONDS = 180
DEMO_DONE_SECONDS = 600  # the next start's backfill of what the stop left: 3 minutes on a quiet machine, 7 on a loaded one
# dev's own bounds: 45 s for Dagster's processes to exit and 5 more to kill them, 15 for the API,
# then the embedded servers.
STOP_SECONDS = 100
HURRIED_STOP_SECONDS = 30
QUIET_SECONDS = 5  # dev's output, after it returns, for something printed late
# dev's last line, and the lines the original fault printed after it.
STOPPED = re.compile(r"stopped .+ in \d+ s")
LATE_ERRORS = ("Retrying failed database connection", "Traceback (most recent call last)")


def _running(process: psutil.Process) -> bool:
    """Still running; a zombie (exited, not yet reaped by a container's PID 1) is not. psutil
    compares the start time too: never a reused pid of someone else's."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


class Dev:
    """`analytics-pipeline dev` as a shell runs a foreground job (a process group of its own), its
    output in a file, and every process it starts, tracked while it runs by pid and start time;
    also the embedded servers, which detach from it."""

    def __init__(self, home: Path, env: dict, *args: str) -> None:
        self.home = home
        self.port, self.api_port = free_port(), free_port()
        self.log_path = home.parent / f"dev-{time.monotonic_ns()}.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-c", "from analytics_pipeline.cli import main; main()", "dev", *args,
                 "--port", str(self.port), "--api-port", str(self.api_port)],
                cwd=PROJECT_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        self.tracked: dict[tuple[int, float], psutil.Process] = {}

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def track(self) -> None:
        with contextlib.suppress(psutil.NoSuchProcess):
            for process in psutil.Process(self.process.pid).children(recursive=True):
                with contextlib.suppress(psutil.NoSuchProcess):
                    self.tracked.setdefault((process.pid, process.create_time()), process)
        for pid_file in (self.home / "pgdata" / "postmaster.pid", self.home / "redis" / "redis.pid"):
            with contextlib.suppress(OSError, ValueError, IndexError, psutil.NoSuchProcess):
                server = psutil.Process(int(pid_file.read_text().split()[0]))
                self.tracked.setdefault((server.pid, server.create_time()), server)

    def wait_for(self, ready, seconds: float, what: str) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"dev exited before {what}:\n{self.output()[-3000:]}"
            self.track()
            with contextlib.suppress(Exception):
                if ready():
                    return
            time.sleep(1)
        pytest.fail(f"not {what} within {seconds} s:\n{self.output()[-3000:]}")

    def serving(self) -> bool:
        ui = requests.get(f"http://127.0.0.1:{self.port}/server_info", timeout=5)
        api = requests.get(f"http://127.0.0.1:{self.api_port}/readyz", timeout=5)
        return ui.ok and api.json()["status"] == "ready"

    def signal_group(self, signum: int) -> None:
        """What Ctrl-C does to a terminal's foreground job; a service manager sends SIGTERM so."""
        self.track()
        os.killpg(self.process.pid, signum)

    def wait_stopped(self, seconds: float) -> float:
        began = time.monotonic()
        while self.process.poll() is None:
            assert time.monotonic() - began < seconds, f"dev still running:\n{self.output()[-3000:]}"
            self.track()  # what starts while it stops, too
            time.sleep(0.2)
        return time.monotonic() - began

    def assert_stopped_cleanly(self) -> None:
        survivors = [f"{p.pid} {' '.join(p.cmdline())[:150]}" for p in self.tracked.values() if _running(p)]
        assert survivors == [], "\n".join(survivors)
        at_return = self.output()
        time.sleep(QUIET_SECONDS)
        output = self.output()
        assert output == at_return, f"printed after dev returned:\n{output[len(at_return):][:3000]}"
        stopping = output.rindex("stopping:")
        assert STOPPED.fullmatch(output.rstrip().splitlines()[-1]), output[stopping:][-3000:]
        assert [e for e in LATE_ERRORS if e in output[stopping:]] == [], output[stopping:][-3000:]
        assert not (self.home / "pgdata" / "postmaster.pid").exists()
        assert not (self.home / "redis" / "redis.sock").exists()
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{self.port}/server_info", timeout=5)
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{self.api_port}/healthz", timeout=5)

    def kill_all(self) -> None:
        """If the test fails: what it started, stopped."""
        if self.process.poll() is None:  # not reaped yet: its process group is still its own
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        for process in self.tracked.values():
            if _running(process):
                with contextlib.suppress(psutil.NoSuchProcess):
                    process.kill()
        self.process.wait(timeout=30)


def _dev_env(home: Path, db_url: str | None = None) -> dict[str, str]:
    """The environment of a `dev` under test, in its own home. With `db_url`, on that database
    (and dev's own Redis and Dagster storage); without, on the embedded PostgreSQL and Redis, which
    dev stops last, and a small demo, with the mail and report settings left to their defaults."""
    env = {**os.environ, "ANALYTICS_HOME": str(home)}
    if db_url is not None:
        env["DATABASE_URL"] = db_url
        unset: tuple[str, ...] = ("REDIS_URL", "DAGSTER_PG_URL")
    else:
        env["ANALYTICS_DEMO_USERS_PER_TENANT"] = "60"
        unset = ("DATABASE_URL", "REDIS_URL", "DAGSTER_PG_URL", "SMTP_HOST", "REPORTS_SENSOR_INTERVAL_SECONDS")
    for variable in unset:
        env.pop(variable, None)
    return env


def _database(home: Path) -> str:
    """The embedded server's analytics database, on the socket in its data directory."""
    return f"postgresql://postgres@/analytics?host={home / 'pgdata'}"


def _runs(home: Path) -> dict[str, int]:
    """The demo backfill's runs by status, in Dagster's storage in the analytics database."""
    with psycopg.connect(_database(home)) as conn:
        return dict(conn.execute(
            "SELECT r.status, count(*) FROM dagster.runs AS r WHERE EXISTS (SELECT 1 FROM dagster.run_tags "
            "AS t WHERE t.run_id = r.run_id AND t.key = 'dagster/backfill') GROUP BY r.status").fetchall())


def _made_by_runs_that_succeeded(home: Path) -> dict[str, int]:
    """Each asset's partitions (distinct) materialized by a run that succeeded."""
    with psycopg.connect(_database(home)) as conn:
        return dict(conn.execute(
            "SELECT e.asset_key, count(DISTINCT e.partition) FROM dagster.event_logs AS e JOIN dagster.runs AS r "
            "USING (run_id) WHERE e.dagster_event_type = 'ASSET_MATERIALIZATION' AND r.status = 'SUCCESS' "
            "GROUP BY e.asset_key").fetchall())


def _database_settings(home: Path) -> list[str]:
    with psycopg.connect(_database(home)) as conn:
        return conn.execute(
            "SELECT coalesce(s.setconfig, '{}') FROM pg_db_role_setting AS s JOIN pg_database AS d "
            "ON d.oid = s.setdatabase WHERE d.datname = current_database() AND s.setrole = 0").fetchone()[0]


def _left_by_the_stop(home: Path, env: dict) -> tuple[dict[str, int], list[str], str]:
    """The runs by status, the backfills' statuses, and the events of runs that failed (to say
    why), read on the embedded server started for it alone (by `db current`) and stopped again."""
    from analytics_pipeline.core.postgres_server import stop_embedded

    try:
        subprocess.run([sys.executable, "-c", "from analytics_pipeline.cli import main; main()", "db", "current"],
                       cwd=PROJECT_DIR, env=env, check=True, capture_output=True, timeout=120)
        with psycopg.connect(_database(home)) as conn:
            runs = dict(conn.execute("SELECT status, count(*) FROM dagster.runs GROUP BY status").fetchall())
            backfills = [status for status, in conn.execute("SELECT status FROM dagster.bulk_actions")]
            failed = conn.execute(
                "SELECT e.run_id, to_char(e.timestamp, 'HH24:MI:SS.MS'), e.dagster_event_type, "
                "left(concat_ws(' ', e.event::json->>'user_message', "
                "                e.event::json->'dagster_event'->'event_specific_data'->'error'->>'message'), 900) "
                "FROM dagster.event_logs AS e JOIN dagster.runs AS r USING (run_id) "
                "WHERE r.status = 'FAILURE' ORDER BY e.id").fetchall()
    finally:
        stop_embedded(home)
    return runs, backfills, "\n".join(" ".join(str(field) for field in event) for event in failed)


@pytest.mark.slow
@pytest.mark.timeout(FIRST_RUNS_SECONDS + 2 * STOP_SECONDS + DEMO_DONE_SECONDS + 4 * QUIET_SECONDS + 60)
def test_ctrl_c_during_the_first_backfill_stops_everything_and_the_next_start_finishes_the_demo(tmp_path):
    home = tmp_path / "home"
    env = _dev_env(home)
    first = Dev(home, env)
    second = None
    try:
        first.wait_for(lambda: "analytics database:" in first.output(), FIRST_RUNS_SECONDS, "migrated")
        first.wait_for(lambda: _runs(home).get("STARTED"), FIRST_RUNS_SECONDS, "running the backfill")
        first.track()
        run_workers = [p for p in first.tracked.values() if _running(p) and "multiprocessing" in " ".join(p.cmdline())]
        assert run_workers, "the backfill's runs are in flight, in run workers of the code server"
        # The terminal shows Dagster's logs at INFO and above: not one line per event.
        assert " - DEBUG - " not in first.output()

        first.signal_group(signal.SIGINT)
        seconds = first.wait_stopped(STOP_SECONDS)
        first.assert_stopped_cleanly()
        assert "cancelling" in first.output()
        print(f"stopped in {seconds:.1f} s with runs in flight")

        # In Dagster's storage, the runs it stopped are cancelled, not failed (which would raise the
        # failure alert), none is left unfinished, and the backfill is cancelled (which the daemon
        # completes once the backfill's runs have ended, here at the next start).
        runs, backfills, failures = _left_by_the_stop(home, env)
        assert runs.get("CANCELED") and set(runs) <= {"SUCCESS", "CANCELED"}, f"{runs}\n{failures}\n{first.output()[-3000:]}"
        assert backfills in (["CANCELING"], ["CANCELED"])

        # The same home starts again: the embedded servers, Dagster and the API; it launches the
        # backfill of the partitions the stopped one left, and once they are made the UI shows
        # every aggregate green, each partition made by a run that succeeded (not only by the
        # cancelled runs), and the demo's first start is made.
        today = dt.datetime.now(dt.UTC).date()
        second = Dev(home, env)
        second.wait_for(second.serving, READY_SECONDS, "serving")
        second.wait_for(lambda: "every partition of the backfill is materialized" in second.output(),
                        DEMO_DONE_SECONDS, "done with the demo's backfill")
        output = second.output()
        assert "has not materialized every aggregate yet: finishing it" in output, output[-3000:]
        assert "that no run has materialized yet" in output, output[-3000:]
        assert "Traceback" not in output, output[-3000:]
        first_day = demo_first_day(today)
        assert_green_first_look(second.port, first_day, today)
        made = _made_by_runs_that_succeeded(home)
        days = (today - first_day).days + 1
        assert made.pop('["revenue_aggregates"]') == days, made
        assert made.pop('["tournament_aggregates"]') == days, made
        assert made.pop('["user_cohorts"]') == _months_between(first_day, today), made
        assert not [setting for setting in _database_settings(home) if "demo_first_start" in setting]
        # SIGTERM (a service manager, `timeout`) stops it the same way.
        second.signal_group(signal.SIGTERM)
        seconds = second.wait_stopped(STOP_SECONDS)
        second.assert_stopped_cleanly()
        print(f"stopped in {seconds:.1f} s when idle")
    finally:
        for dev in (first, second):
            if dev is not None:
                dev.kill_all()


@pytest.mark.slow
@pytest.mark.timeout(FIRST_RUNS_SECONDS + STOP_SECONDS + QUIET_SECONDS + 60)
def test_ctrl_c_during_the_demo_state_run_prints_only_the_stop(tmp_path):
    """The demo's state runs in dev's process, its steps' compute-log helpers (`tail` and a Python
    watcher) in dev's process group, which Ctrl-C reaches: they must print no KeyboardInterrupt
    traceback. The state run is held mid-step by a lock on analytics_events, taken as soon as the
    demo's load is done (committed and analyzed) and released once the signal is sent. The signal waits for the daemon to
    have submitted the backfill's runs (one daily, one monthly), its code location shutting down
    while it submits them failing the backfill with a traceback of Dagster's own."""
    home = tmp_path / "home"
    dev = Dev(home, _dev_env(home))
    lock = None
    try:
        dev.wait_for(lambda: re.search(r"^loaded \d+ organizations", dev.output(), re.M), FIRST_RUNS_SECONDS,
                     "done loading the demo")
        lock = psycopg.connect(_database(home), connect_timeout=5)
        lock.execute("LOCK TABLE analytics_events IN ACCESS EXCLUSIVE MODE")

        def state_run_mid_step() -> bool:
            with psycopg.connect(_database(home)) as conn:
                started = conn.execute(
                    "SELECT count(*) FROM dagster.runs AS r JOIN dagster.run_tags AS t USING (run_id) "
                    "WHERE t.key = 'analytics/demo' AND t.value = 'state' AND r.status = 'STARTED'").fetchone()[0]
            helpers = [p for p in psutil.Process(dev.process.pid).children(recursive=True)
                       if "watch_orphans" in " ".join(p.cmdline())]
            return bool(started and helpers)

        def backfill_submitted() -> bool:
            runs = _runs(home)
            return sum(runs.values()) >= 2 and bool(runs.get("STARTED"))

        dev.wait_for(lambda: dev.serving() and backfill_submitted() and state_run_mid_step(), FIRST_RUNS_SECONDS,
                     "running the backfill, and the state mid-step")
        dev.signal_group(signal.SIGINT)
        lock.rollback()  # the state run goes on, and ends or is stopped
        lock.close()
        dev.wait_stopped(STOP_SECONDS)
        dev.assert_stopped_cleanly()
        output = dev.output()
        assert "Traceback" not in output, output[-3000:]
    finally:
        if lock is not None:
            lock.close()
        dev.kill_all()


@pytest.mark.slow
@pytest.mark.timeout(READY_SECONDS + HURRIED_STOP_SECONDS + QUIET_SECONDS + 60)
def test_a_second_signal_hurries_the_stop(db_url, tmp_path):
    home = tmp_path / "home"
    dev = Dev(home, _dev_env(home, db_url), "--no-demo")
    try:
        dev.wait_for(dev.serving, READY_SECONDS, "serving")
        dev.signal_group(signal.SIGTERM)
        dev.wait_for(lambda: "stopping:" in dev.output(), 10, "stopping")
        dev.signal_group(signal.SIGINT)
        dev.wait_stopped(HURRIED_STOP_SECONDS)
        dev.assert_stopped_cleanly()
    finally:
        dev.kill_all()


@pytest.mark.slow
@pytest.mark.timeout(READY_SECONDS + STOP_SECONDS + QUIET_SECONDS + 60)
def test_the_terminal_closing_stops_it_as_ctrl_c_does(db_url, tmp_path):
    """A terminal that closes sends SIGHUP to its foreground job: dev stops the same clean way."""
    home = tmp_path / "home"
    dev = Dev(home, _dev_env(home, db_url), "--no-demo")
    try:
        dev.wait_for(dev.serving, READY_SECONDS, "serving")
        dev.signal_group(signal.SIGHUP)
        dev.wait_stopped(STOP_SECONDS)
        dev.assert_stopped_cleanly()
        assert dev.process.returncode == 0, dev.output()[-3000:]
    finally:
        dev.kill_all()


def test_under_nohup_the_terminal_closing_does_not_stop_it(monkeypatch):
    """`nohup` (SIGHUP ignored when dev starts) keeps dev running after its terminal closes; the
    other signals stop it still."""
    from analytics_pipeline.dev import shutdown
    from analytics_pipeline.dev.shutdown import StopRequest

    monkeypatch.setattr(shutdown, "_hung_up", lambda signum: None)  # this test's terminal stays

    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        StopRequest().install()
        assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_IGN, signal.SIG_DFL)

        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        stopping = StopRequest()
        stopping.install()
        os.kill(os.getpid(), signal.SIGHUP)
        assert stopping.requested and not stopping.hurried
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)
