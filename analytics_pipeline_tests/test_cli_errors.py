"""Every refused command-line value: one line on stderr naming the option and what it accepts,
exit code 2, no traceback, and nothing written to the database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from analytics_pipeline.cli import main
from analytics_pipeline.core import db

from .reports.support import add_org

CONSOLE_SCRIPT = Path(sys.executable).parent / "analytics-pipeline"
REPORT = ["reports", "add", "--tenant", "org-a", "--name", "Weekly", "--type", "comprehensive",
          "--frequency", "weekly", "--to", "ann@example.com"]


def _snapshot(engine) -> dict:
    """Every table of the database with its row count, and the schemas: what a write would change."""
    with engine.connect() as conn:
        tables = conn.execute(sa.text(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') AND table_type = 'BASE TABLE'"
        )).all()
        counts = {
            f"{schema}.{name}": conn.execute(sa.text(f'SELECT count(*) FROM "{schema}"."{name}"')).scalar()
            for schema, name in tables
        }
        schemas = set(conn.execute(sa.text("SELECT nspname FROM pg_namespace")).scalars())
        version = None
        if "public.alembic_version" in counts:
            version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    return {"counts": counts, "schemas": schemas, "version": version}


# (arguments, the option the message names). Those of the first block were tracebacks before.
BAD_INPUTS = [
    (["db", "upgrade", "nosuchrev"], "REVISION"),
    (["db", "downgrade", "nosuchrev"], "REVISION"),
    (["seed", "--malformed-rate", "nan"], "--malformed-rate"),
    (["seed", "--start", "0001-01-01", "--end", "0001-01-02"], "--start"),
    (["retention", "run", "--months", "30000"], "--months"),
    (["retention", "run", "--months", "99999999999"], "--months"),
    (["retention", "run", "--time-budget-minutes", "nan"], "--time-budget-minutes"),
    (["retention", "run", "--time-budget-minutes", "inf"], "--time-budget-minutes"),
    (["retention", "run", "--max-wal-mb-per-second", "nan"], "--max-wal-mb-per-second"),
    # db
    (["db", "upgrade", ""], "REVISION"),
    (["db", "downgrade"], "REVISION"),
    (["db", "downgrade", "head-1x"], "REVISION"),
    # seed: negative, zero, huge, empty, wrong formats
    (["seed", "--tenants", "0"], "--tenants"),
    (["seed", "--tenants", "-3"], "--tenants"),
    (["seed", "--tenants", "1001"], "--tenants"),
    (["seed", "--tenants", ""], "--tenants"),
    (["seed", "--tenants", "2.5"], "--tenants"),
    (["seed", "--tenants"], "--tenants"),
    (["seed", "--users-per-tenant", "0"], "--users-per-tenant"),
    (["seed", "--users-per-tenant", "1000000000000"], "--users-per-tenant"),
    (["seed", "--seed", "-1"], "--seed"),
    (["seed", "--seed", str(2**31)], "--seed"),
    (["seed", "--seed", "x"], "--seed"),
    (["seed", "--malformed-rate", "inf"], "--malformed-rate"),
    (["seed", "--malformed-rate", "-inf"], "--malformed-rate"),
    (["seed", "--malformed-rate", "-0.1"], "--malformed-rate"),
    (["seed", "--malformed-rate", "1.01"], "--malformed-rate"),
    (["seed", "--malformed-rate", "1e400"], "--malformed-rate"),
    (["seed", "--malformed-rate", "ten percent"], "--malformed-rate"),
    (["seed", "--late-rate", "nan"], "--late-rate"),
    (["seed", "--late-rate", "2"], "--late-rate"),
    (["seed", "--start", "2025-02-30"], "--start"),
    (["seed", "--start", "02/01/2025"], "--start"),
    (["seed", "--start", "2025-01-01T00:00"], "--start"),
    (["seed", "--start", ""], "--start"),
    (["seed", "--start", "1999-12-31"], "--start"),
    (["seed", "--end", "9999-12-31"], "--end"),
    (["seed", "--end", "0001-01-02"], "--end"),
    (["seed", "--start", "2025-05-01", "--end", "2025-04-01"], "--start"),
    (["seed", "--start", "2025-05-01", "--end", "2025-05-01"], "--start"),
    # retention run
    (["retention", "run", "--months", "0"], "--months"),
    (["retention", "run", "--months", "-1"], "--months"),
    (["retention", "run", "--months", "1201"], "--months"),
    (["retention", "run", "--months", "thirteen"], "--months"),
    (["retention", "run", "--months", ""], "--months"),
    (["retention", "run", "--time-budget-minutes", "0"], "--time-budget-minutes"),
    (["retention", "run", "--time-budget-minutes", "-5"], "--time-budget-minutes"),
    (["retention", "run", "--time-budget-minutes", "1441"], "--time-budget-minutes"),
    (["retention", "run", "--time-budget-minutes", "-inf"], "--time-budget-minutes"),
    (["retention", "run", "--max-wal-mb-per-second", "0"], "--max-wal-mb-per-second"),
    (["retention", "run", "--max-wal-mb-per-second", "-1"], "--max-wal-mb-per-second"),
    (["retention", "run", "--max-wal-mb-per-second", "inf"], "--max-wal-mb-per-second"),
    (["retention", "run", "--max-wal-mb-per-second", "1e9"], "--max-wal-mb-per-second"),
    (["retention", "run", "--dry-run=yes"], "--dry-run"),
    # dev
    (["dev", "--port", "0"], "--port"),
    (["dev", "--port", "65536"], "--port"),
    (["dev", "--port", "-1"], "--port"),
    (["dev", "--port", "http"], "--port"),
    # reports
    ([*REPORT, "--tenant", ""], "--tenant"),
    ([*REPORT, "--tenant", "   "], "--tenant"),
    ([*REPORT, "--name", ""], "--name"),
    ([*REPORT, "--name", "x" * 256], "--name"),
    ([*REPORT, "--name", "Weekly\u2028KPIs"], "--name"),
    ([*REPORT, "--type", "everything"], "--type"),
    ([*REPORT, "--frequency", "hourly"], "--frequency"),
    ([*REPORT, "--to", "not-an-address"], "--to"),
    ([*REPORT, "--to", ""], "--to"),
    ([*REPORT, "--timezone", "Mars/Olympus"], "--timezone"),
    ([*REPORT, "--timezone", ""], "--timezone"),
    ([*REPORT, "--at", "08:00+05:00"], "--at"),
    ([*REPORT, "--at", "08:00:00.5"], "--at"),
    ([*REPORT, "--at", "24:00"], "--at"),
    ([*REPORT, "--at", ""], "--at"),
    ([*REPORT, "--day-of-week", "0"], "--day-of-week"),
    ([*REPORT, "--day-of-week", "8"], "--day-of-week"),
    ([*REPORT, "--day-of-week", "monday"], "--day-of-week"),
    ([*REPORT, "--day-of-month", "32"], "--day-of-month"),
    ([*REPORT, "--day-of-month", "-1"], "--day-of-month"),
    ([*REPORT, "--lookback", "0"], "--lookback"),
    ([*REPORT, "--lookback", "25"], "--lookback"),
    ([*REPORT, "--lookback", "99999999999999999999"], "--lookback"),
    ([*REPORT, "--parameters", "{"], "--parameters"),
    ([*REPORT, "--parameters", "[1, 2]"], "--parameters"),
    ([*REPORT, "--parameters", '{"cohorts": true}'], "--parameters"),
    ([*REPORT, "--parameters", '{"cohorts": 0}'], "--parameters"),
    ([*REPORT, "--parameters", '{"send_time": "08:00+05:00"}'], "--parameters"),
    ([*REPORT, "--parameters", '{"colour": "red"}'], "--parameters"),
    (["reports", "add", "--tenant", "org-a"], "--name"),
    (["reports", "pause"], "REPORT_ID"),
    (["reports", "send-now"], "REPORT_ID"),
    (["no-such-command"], "no-such-command"),
]


@pytest.fixture
def cli_env(db_url, engine, tmp_path):
    with engine.begin() as conn:
        add_org(conn, "org-a", "Acme")
    return {"DATABASE_URL": db_url, "ANALYTICS_HOME": str(tmp_path)}


def _assert_refused(code: int, stderr: str, stdout: str, option: str) -> None:
    assert code == 2, (code, stdout, stderr)
    assert "Traceback" not in stderr + stdout
    assert stdout == ""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("Error: ") and option in lines[0], lines[0]


@pytest.mark.parametrize("args, option", BAD_INPUTS, ids=[" ".join(a)[-60:] for a, _ in BAD_INPUTS])
def test_a_bad_value_is_one_line_naming_the_option_and_nothing_is_written(cli_env, engine, args, option):
    before = _snapshot(engine)
    result = CliRunner().invoke(main, args, env=cli_env, catch_exceptions=False)
    _assert_refused(result.exit_code, result.stderr, result.stdout, option)
    assert _snapshot(engine) == before


def test_the_range_accepted_is_in_the_message(cli_env):
    result = CliRunner().invoke(main, ["retention", "run", "--months", "30000"], env=cli_env)
    assert "1<=x<=1200" in result.stderr
    result = CliRunner().invoke(main, ["db", "downgrade", "nosuchrev"], env=cli_env)
    assert "accepted: head, base" in result.stderr and "0003_row_level_security" in result.stderr


@pytest.mark.parametrize("args, option", BAD_INPUTS[:9])
def test_the_console_script_refuses_without_a_traceback(db_url, engine, args, option):
    """The installed `analytics-pipeline` script, as a user runs it, on the inputs that were
    tracebacks; a database at base stays without any table."""
    env = {**os.environ, "DATABASE_URL": db_url}
    before = _snapshot(engine)
    result = subprocess.run([str(CONSOLE_SCRIPT), *args], env=env, capture_output=True, text=True, timeout=120)
    _assert_refused(result.returncode, result.stderr, result.stdout, option)
    assert _snapshot(engine) == before


def test_db_upgrade_to_an_unknown_revision_creates_nothing_in_an_empty_database(empty_db_url):
    from analytics_pipeline.core import db

    engine = db.engine_for(empty_db_url)
    before = _snapshot(engine)
    result = CliRunner().invoke(main, ["db", "upgrade", "nosuchrev"], env={"DATABASE_URL": empty_db_url})
    _assert_refused(result.exit_code, result.stderr, result.stdout, "REVISION")
    assert _snapshot(engine) == before and before["counts"] == {}


def test_relative_and_abbreviated_revisions_are_accepted(db_url):
    env = {"DATABASE_URL": db_url}
    result = CliRunner().invoke(main, ["db", "downgrade", "--", "-1"], env=env)
    assert result.exit_code == 0, result.output
    head = db.head_revision()
    result = CliRunner().invoke(main, ["db", "upgrade", head[:4]], env=env)
    assert result.exit_code == 0 and f"is at {head}" in result.output
