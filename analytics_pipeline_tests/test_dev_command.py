"""`analytics-pipeline dev` (the README's first command) keeps Dagster's storage in the schema
`dagster` of the analytics database, and stops everything it started when it is interrupted, even
when the shell that started it ignores SIGINT (a backgrounded job)."""

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
import requests
import sqlalchemy as sa

from analytics_pipeline.settings import PROJECT_DIR

from .helpers import free_port

STARTUP_SECONDS = 120
SHUTDOWN_SECONDS = 60


def _alive(pids: list[int]) -> list[int]:
    """Those still running; zombies (exited, never reaped by a container's PID 1) do not count."""
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            continue
    return alive


@pytest.mark.timeout(STARTUP_SECONDS + SHUTDOWN_SECONDS + 60)
def test_dev_stores_dagster_in_the_analytics_database_and_stops_on_sigint(db_url, engine, tmp_path):
    port = free_port()
    env = {**os.environ, "DATABASE_URL": db_url, "ANALYTICS_HOME": str(tmp_path)}
    log_path = tmp_path / "dev.log"
    with log_path.open("wb") as log:
        command = subprocess.Popen(
            [sys.executable, "-c", "from analytics_pipeline.cli import main; main()",
             "dev", "--no-demo", "--port", str(port)],
            cwd=PROJECT_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # As a shell running it in the background does: SIGINT ignored, and inherited so.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
        )
    started: list[int] = []
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            assert command.poll() is None, f"dev exited early:\n{log_path.read_text(errors='replace')[-3000:]}"
            try:
                if requests.get(f"http://127.0.0.1:{port}/server_info", timeout=5).ok:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(1)
        else:
            pytest.fail(f"the UI did not answer:\n{log_path.read_text(errors='replace')[-3000:]}")
        with engine.connect() as conn:
            dagster_tables = set(conn.execute(sa.text(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'dagster'"
            )).scalars())
        assert {"runs", "event_logs", "instigators"} <= dagster_tables
        assert not (tmp_path / "dagster" / "history").exists()  # no SQLite storage beside it

        started = [p.pid for p in psutil.Process(command.pid).children(recursive=True)]
        assert len(started) >= 3  # dagster dev, its webserver and its daemon at least

        os.kill(command.pid, signal.SIGINT)  # to the command only, not to its process group

        deadline = time.monotonic() + SHUTDOWN_SECONDS
        while (command.poll() is None or _alive(started)) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert command.poll() is not None, "the command did not exit"
        assert _alive(started) == [], f"still running:\n{log_path.read_text(errors='replace')[-3000:]}"
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/server_info", timeout=5)
    finally:
        for pid in [command.pid, *_alive(started)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        command.wait(timeout=30)
