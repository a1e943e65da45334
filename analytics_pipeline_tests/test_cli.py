"""The command line: clear one-line errors, migrations through `db`, and the embedded default."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from analytics_pipeline import db
from analytics_pipeline.cli import main


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
        from analytics_pipeline.embedded import stop_embedded

        stopped = stop_embedded(tmp_path / "home")
    assert stopped, "the embedded server should have been running until stopped"
