"""The command line: clear one-line errors, migrations through `db`, and the embedded default."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from analytics_pipeline.cli import main
from analytics_pipeline.core import db
from analytics_pipeline.core.settings import PROJECT_DIR


def _run(args, env):
    result = CliRunner().invoke(main, args, env=env, catch_exceptions=False)
    return result.exit_code, result.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_wrong_scheme_names_the_setting():
    code, out = _run(["db", "current"], {"DATABASE_URL": "mysql://root@localhost/x"})
    assert code != 0
    assert "DATABASE_URL must be a postgresql:// URL" in out
    assert len(out.strip().splitlines()) == 1


def test_unreachable_server_says_what_to_do():
    code, out = _run(["db", "upgrade"], {"DATABASE_URL": f"postgresql://postgres@127.0.0.1:{_free_port()}/x"})
    assert code != 0
    assert "cannot reach the analytics database" in out
    assert "DATABASE_URL" in out
    assert len(out.strip().splitlines()) == 1


def test_unmigrated_database_is_refused_with_the_command_to_run(empty_db_url):
    with pytest.raises(db.DatabaseNotReady, match="has no analytics schema.*analytics-pipeline db upgrade"):
        db.check_migrated(db.engine_for(empty_db_url))


def test_db_commands_migrate_and_report(empty_db_url):
    env = {"DATABASE_URL": empty_db_url}
    code, out = _run(["db", "current"], env)
    assert code == 0 and "base (no analytics schema)" in out
    code, out = _run(["db", "upgrade"], env)
    assert code == 0
    code, out = _run(["db", "current"], env)
    assert "(up to date)" in out
    code, out = _run(["db", "downgrade", "0003_row_level_security"], env)
    assert code == 0 and "is at 0003_row_level_security" in out
    with pytest.raises(db.DatabaseNotReady, match="is at revision 0003_row_level_security"):
        db.check_migrated(db.engine_for(empty_db_url))


@pytest.mark.slow
def test_embedded_server_starts_migrates_and_is_shared(tmp_path):
    """With DATABASE_URL unset, a separate process starts the embedded server under
    ANALYTICS_HOME, and a second process attaches to the same server and sees the schema."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["ANALYTICS_HOME"] = str(tmp_path / "home")
    cli = [sys.executable, "-c", "from analytics_pipeline.cli import run; run()"]
    try:
        first = subprocess.run([*cli, "db", "upgrade"], env=env, capture_output=True, text=True, timeout=180)
        assert first.returncode == 0, first.stderr
        assert (tmp_path / "home" / "pgdata" / "PG_VERSION").exists()
        second = subprocess.run([*cli, "db", "current"], env=env, capture_output=True, text=True, timeout=60)
        assert "(up to date)" in second.stdout, second.stderr
    finally:
        from analytics_pipeline.core.postgres_server import stop_embedded

        stopped = stop_embedded(tmp_path / "home")
    assert stopped, "the embedded server should have been running until stopped"


def test_code_location_validates():
    env = {**os.environ, "DAGSTER_HOME": ""}
    env.pop("DAGSTER_HOME")
    result = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
        capture_output=True, text=True, timeout=120, env=env, cwd=PROJECT_DIR,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "All code locations passed validation" in result.stderr + result.stdout


@pytest.mark.slow
def test_dagster_cli_materializes_a_partition_range(db_url, tmp_path):
    """The command from the docs, on a database holding only events, leaves the range's rows."""
    from .helpers import add_event

    with db.engine_for(db_url).begin() as conn:
        add_event(conn, "t1", "subscription_started", "2025-01-10 10:00", "c1",
                  subscription_id="s1", plan_id="p", amount=30, interval="month")
        add_event(conn, "t1", "payment_completed", "2025-02-03 10:00", "c1", payment_id="p1", amount=30)
    env = {**os.environ, "DATABASE_URL": db_url, "ANALYTICS_RETENTION_MONTHS": "240", "DAGSTER_HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "analytics_pipeline.definitions",
         "--select", "revenue_aggregates", "--partition-range", "2025-01-01...2025-03-31"],
        capture_output=True, text=True, timeout=300, env=env, cwd=PROJECT_DIR,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with db.engine_for(db_url).connect() as conn:
        months = conn.execute(sa.text(
            "SELECT period_start, mrr, new_revenue, total_revenue FROM revenue_aggregates "
            "WHERE period_type = 'month' ORDER BY period_start")).all()
        days = conn.execute(sa.text("SELECT min(period_start), max(period_start), count(*) FROM revenue_aggregates "
                                    "WHERE period_type = 'day'")).one()
    assert [(str(m[0]), m[1], m[2], m[3]) for m in months] == [
        ("2025-01-01", 30, 30, 0), ("2025-02-01", 30, 0, 30), ("2025-03-01", 30, 0, 0)]
    # one row per day from the subscription's start to the end of the range
    assert (str(days[0]), str(days[1]), days[2]) == ("2025-01-10", "2025-03-31", 81)
