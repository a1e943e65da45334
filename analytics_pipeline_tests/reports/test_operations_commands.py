"""Every shell block of docs/operations.md that changes state runs here as written (placeholders
filled in), from the project directory, as installed commands in subprocesses, and does what the
docs say: pause and resume a report, stop and start the reports sensor where the daemon reads its
state, purge expired events."""

from __future__ import annotations

import datetime as dt
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from analytics_pipeline.core.settings import PROJECT_DIR

from ..retention.test_retention_runs import _count, _events, every_state_absorbs
from .support import add_org, add_report, report_row

DOC = PROJECT_DIR / "docs" / "operations.md"
BIN = Path(sys.executable).parent  # analytics-pipeline and dagster, installed beside the interpreter


def blocks(heading: str) -> list[list[str]]:
    """The ```sh blocks of the section `heading`, each as its command lines."""
    text = DOC.read_text()
    section = text[text.index(f"### {heading}\n"):]
    section = section[:section.index("\n### ", 1)] if "\n### " in section[1:] else section
    return [[line for line in block.splitlines() if line.strip()]
            for block in re.findall(r"```sh\n(.*?)```", section, re.S)]


def run(line: str, env: dict, **placeholders) -> subprocess.CompletedProcess:
    for name, value in placeholders.items():
        line = re.sub(rf"\b{name}\b", value, line)
    args = shlex.split(line)
    result = subprocess.run([str(BIN / args[0]), *args[1:]], cwd=PROJECT_DIR, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, f"{line}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture
def env(db_url, tmp_path):
    return {**os.environ, "DATABASE_URL": db_url, "ANALYTICS_HOME": str(tmp_path), "DAGSTER_HOME": str(tmp_path)}


def test_the_documented_pause_and_resume_of_one_report(engine, env):
    with engine.begin() as conn:
        add_org(conn, "org-a", "Acme")
        add_report(conn, "rpt_1", next_run_at=dt.datetime(2030, 1, 7, 8))
    [[pause, resume], _] = blocks("Pause reports")
    assert pause.startswith("analytics-pipeline reports pause") and resume.startswith("analytics-pipeline reports resume")
    run(pause, env, REPORT_ID="rpt_1")
    assert not report_row(engine, "rpt_1")["is_active"]
    run(resume, env, REPORT_ID="rpt_1")
    assert report_row(engine, "rpt_1")["is_active"]


@pytest.mark.slow
def test_the_documented_sensor_stop_is_stored_where_the_daemon_reads_it(env, tmp_path):
    """The daemon of `make dev` (and of a deployment with this workspace file) loads the location
    that workspace.yaml names; the stop must be stored under that name."""
    from dagster import DagsterInstance

    [_, [stop, start]] = blocks("Pause reports")
    assert stop.startswith("dagster sensor stop scheduled_reports_sensor")
    [location] = [entry["python_module"]["location_name"]
                  for entry in yaml.safe_load((PROJECT_DIR / "workspace.yaml").read_text())["load_from"]]

    def state() -> dict[str, str]:
        with DagsterInstance.from_config(str(tmp_path)) as instance:
            return {s.origin.repository_origin.code_location_origin.location_name: s.status.name
                    for s in instance.all_instigator_state() if s.name == "scheduled_reports_sensor"}

    run(stop, env)
    assert state() == {location: "STOPPED"}
    run(start, env)
    assert state() == {location: "RUNNING"}


def test_the_documented_purge(engine, env):
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    _events(engine, now - dt.timedelta(days=100), now - dt.timedelta(days=1))
    every_state_absorbs(engine)
    [[dry_run, purge]] = blocks("Change retention")
    assert "--dry-run" in dry_run and "--dry-run" not in purge
    assert "would delete 1 events" in run(dry_run, env, N="2").stdout
    assert _count(engine) == 2
    assert "deleted 1 events" in run(purge, env, N="2").stdout
    assert _count(engine) == 1  # the event of 100 days ago, older than 2 months
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT min(timestamp) FROM analytics_events")).scalar() > now - dt.timedelta(days=2)
