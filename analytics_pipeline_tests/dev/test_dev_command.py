"""`analytics-pipeline dev` (the README's first command) keeps Dagster's storage in the schema
`dagster` of the analytics database, and stops everything it started when it is interrupted, even
when the shell that started it ignores SIGINT (a backgrounded job). Its output has no warnings of
Dagster's that the project triggers; on an empty database it loads the demo, materializes every
aggregate over the demo's range in one backfill, which leaves no partition of an aggregate missing
in the UI (their partitions start where the data does), and delivers one demo report per
frequency."""

import calendar
import datetime as dt
import os
import re
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import psutil
import pytest
import requests
import sqlalchemy as sa

from analytics_pipeline.core import db
from analytics_pipeline.core.schema import analytics_events, organizations
from analytics_pipeline.core.settings import PROJECT_DIR
from analytics_pipeline.dev import demo

from ..helpers import free_port

STARTUP_SECONDS = 120
SHUTDOWN_SECONDS = 60
FIRST_START_SECONDS = 420  # a deadline for a loaded machine; about 2 minutes on a quiet one
# What the UI shows of each asset's partitions: a partitioned asset with some missing is grey.
PARTITION_STATS = """{ assetNodes { assetKey { path } isMaterializable
    partitionStats { numMaterialized numPartitions numFailed numMaterializing } } }"""
# A log line at DEBUG, plain (run workers) or coloured (the daemon, the webserver).
DEBUG_LINE = re.compile(r" - (?:\x1b\[\d+m)?DEBUG(?:\x1b\[0m)? - .*")
# What a start printed before: Dagster's beta notices for parameters the project uses, the notice
# that `dagster dev` is superseded, and any traceback.
NOISE = ("BetaWarning", "PreviewWarning", "SupersessionWarning", "Use 'dg dev' instead", "is currently in beta",
         "Traceback")


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
        # The dev instance asks for no sign-up ("Join the Dagster community") in the UI.
        nux = requests.post(f"http://127.0.0.1:{port}/graphql", json={"query": "{ shouldShowNux }"}, timeout=30)
        assert nux.json() == {"data": {"shouldShowNux": False}}

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
        output = log_path.read_text(errors="replace")
        assert [noise for noise in NOISE if noise in output] == [], output[-3000:]
    finally:
        for pid in [command.pid, *_alive(started)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        command.wait(timeout=30)


def _months_between(first: dt.date, last: dt.date) -> int:
    return (last.year - first.year) * 12 + last.month - first.month + 1


def demo_first_day(today: dt.date) -> dt.date:
    """The demo covers the 14 months before today."""
    year, month = divmod(today.year * 12 + today.month - 1 - 14, 12)
    return dt.date(year, month + 1, min(today.day, calendar.monthrange(year, month + 1)[1]))


def assert_green_first_look(port: int, first_day: dt.date, today: dt.date) -> None:
    """A green first look in the UI: the partitions of every aggregate start on the demo's first
    day, and none in their range is missing."""
    nodes = requests.post(f"http://127.0.0.1:{port}/graphql", json={"query": PARTITION_STATS},
                          timeout=60).json()["data"]["assetNodes"]
    stats = {"/".join(node["assetKey"]["path"]): node["partitionStats"] for node in nodes
             if node["isMaterializable"] and node["partitionStats"]}
    assert {"revenue_aggregates", "tournament_aggregates", "user_cohorts"} <= set(stats), stats
    assert {key: s for key, s in stats.items() if s["numMaterialized"] != s["numPartitions"]} == {}
    assert stats["revenue_aggregates"]["numPartitions"] == (today - first_day).days + 1
    assert stats["user_cohorts"]["numPartitions"] == _months_between(first_day, today)


@pytest.mark.slow
@pytest.mark.timeout(FIRST_START_SECONDS + SHUTDOWN_SECONDS + 60)
def test_first_start_materializes_every_aggregate_and_delivers_the_demo_reports(db_url, engine, tmp_path):
    port = free_port()
    env = {**os.environ, "DATABASE_URL": db_url, "ANALYTICS_HOME": str(tmp_path),
           "ANALYTICS_DEMO_USERS_PER_TENANT": "60"}
    for variable in ("SMTP_HOST", "REPORTS_SENSOR_INTERVAL_SECONDS", "DAGSTER_PG_URL"):
        env.pop(variable, None)
    log_path = tmp_path / "dev.log"
    today = dt.datetime.now(dt.UTC).date()
    with log_path.open("wb") as log:
        command = subprocess.Popen(
            [sys.executable, "-c", "from analytics_pipeline.cli import main; main()", "dev", "--port", str(port)],
            cwd=PROJECT_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    descendants: dict[int, psutil.Process] = {}
    try:
        deadline = time.monotonic() + FIRST_START_SECONDS
        delivered: list = []
        while time.monotonic() < deadline:
            assert command.poll() is None, f"dev exited early:\n{log_path.read_text(errors='replace')[-3000:]}"
            # dagster dev runs in a session of its own: what to stop if this test fails.
            descendants |= {p.pid: p for p in psutil.Process(command.pid).children(recursive=True)}
            delivered = sorted((tmp_path / "outbox").glob("*.eml"))
            if len(delivered) >= 3:
                break
            time.sleep(2)
        output = log_path.read_text(errors="replace")
        assert len(delivered) == 3, output[-4000:]

        # Where things are, said before Dagster's own lines, and the backfill, launched before
        # Dagster starts so that its daemon's first backfill iteration starts the runs.
        assert f"Dagster UI: http://127.0.0.1:{port}" in output
        assert f"report emails: outbox {tmp_path / 'outbox'}" in output
        assert 0 <= output.find("launched the backfill") < output.find("Launching Dagster services")
        assert "every partition of the backfill is materialized" in output
        assert [noise for noise in NOISE if noise in output] == [], output[-3000:]
        # Dagster's logs at INFO and above: not one line per event of the backfill's runs.
        assert DEBUG_LINE.findall(output)[:5] == []

        # The demo covers the 14 months before today: every day and month partition from its
        # first day to today has a materialization, and every state asset one.
        first_day = demo_first_day(today)
        with engine.connect() as conn:
            partitions = dict(conn.execute(sa.text(
                "SELECT asset_key, count(DISTINCT partition) FROM dagster.event_logs "
                "WHERE dagster_event_type = 'ASSET_MATERIALIZATION' GROUP BY asset_key"
            )).all())
            backfills = conn.execute(sa.text("SELECT count(*) FROM dagster.bulk_actions")).scalar()
            reports = conn.execute(sa.text(
                "SELECT r.frequency, d.status FROM scheduled_reports AS r JOIN report_deliveries AS d "
                "ON d.report_id = r.id ORDER BY r.frequency")).all()
            rows = {table: conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar()
                    for table in ("revenue_aggregates", "tournament_aggregates", "user_cohorts")}
        days = (today - first_day).days + 1
        assert partitions.pop('["revenue_aggregates"]') == days
        assert partitions.pop('["tournament_aggregates"]') == days
        assert partitions.pop('["user_cohorts"]') == _months_between(first_day, today)
        for state in ("subscription_history", "tournament_history", "user_signups", "user_activity_months"):
            assert f'["{state}"]' in partitions
        assert backfills == 1

        assert_green_first_look(port, first_day, today)
        assert reports == [("daily", "sent"), ("monthly", "sent"), ("weekly", "sent")]
        assert all(rows.values()), rows

    finally:
        if command.poll() is None:
            os.kill(command.pid, signal.SIGINT)
            try:
                command.wait(timeout=SHUTDOWN_SECONDS)
            except subprocess.TimeoutExpired:
                pass
        if command.poll() is None:
            command.kill()
        for process in descendants.values():
            # is_running() also checks the start time: never a reused pid of someone else's.
            if process.is_running():
                try:
                    process.kill()
                except psutil.NoSuchProcess:
                    pass
        command.wait(timeout=30)


def test_dev_starts_the_partitions_where_the_data_does(db_url, engine, monkeypatch):
    """ANALYTICS_START_DATE for dev's processes: the demo's first day on the first start, kept
    with the database for the later ones; without a demo, the first event's day; none without
    events, nor over a value of the environment."""
    monkeypatch.delenv("ANALYTICS_START_DATE", raising=False)
    assert demo.partitions_start_env(db_url) == {}
    with engine.begin() as conn:
        conn.execute(organizations.insert(), [{"id": "org_a", "name": "A"}])
        conn.execute(analytics_events.insert(), [
            {"id": f"e{i}", "tenant_id": "org_a", "event_type": "page_view", "event_data": {}, "timestamp": ts}
            for i, ts in enumerate([dt.datetime(2025, 3, 9, 23, 59), dt.datetime(2025, 3, 8, 0, 1)])
        ])
    assert demo.partitions_start_env(db_url) == {"ANALYTICS_START_DATE": "2025-03-08"}

    loaded = SimpleNamespace(start=dt.date(2025, 3, 1))
    assert demo.partitions_start_env(db_url, loaded) == {"ANALYTICS_START_DATE": "2025-03-01"}
    db.dispose(db_url)  # a later start: new sessions, which read the database's settings
    assert demo.partitions_start_env(db_url) == {"ANALYTICS_START_DATE": "2025-03-01"}

    monkeypatch.setenv("ANALYTICS_START_DATE", "2024-06-01")
    assert demo.partitions_start_env(db_url, loaded) == {}
