"""`analytics-pipeline`: database migrations, the local development stack, and operations."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import click

from . import db, migrate
from .reports.cli import reports as reports_group
from .settings import PROJECT_DIR, ConfigError, analytics_home

DAGSTER_YAML = """\
# Written by `analytics-pipeline dev`: local development instance (storage in this folder).
telemetry:
  enabled: false
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    max_concurrent_runs: 4
"""


def _url() -> str:
    try:
        url = db.resolve_url()
        db.sqlalchemy_url(url)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    return url


def _fail_clearly(fn, *args):
    try:
        return fn(*args)
    except (db.DatabaseNotReady, ConfigError) as exc:
        raise click.ClickException(str(exc)) from None


@click.group()
def main() -> None:
    """Analytics pipeline: revenue, retention and tournament metrics for each organization."""


@main.group("db")
def db_group() -> None:
    """Schema migrations (alembic) of the analytics database."""


@db_group.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: head)."""
    url = _url()
    _fail_clearly(db.check_reachable, db.engine_for(url))
    migrate.upgrade(url, revision)
    click.echo(f"{db.describe(url)} is at {migrate.current_revision(url)}")


@db_group.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION (`base` removes the analytics schema)."""
    url = _url()
    _fail_clearly(db.check_reachable, db.engine_for(url))
    migrate.downgrade(url, revision)
    click.echo(f"{db.describe(url)} is at {migrate.current_revision(url) or 'base'}")


@db_group.command("current")
def db_current() -> None:
    """Show the database's revision and whether it is the code's head."""
    url = _url()
    _fail_clearly(db.check_reachable, db.engine_for(url))
    current = migrate.current_revision(url)
    head = migrate.head_revision()
    state = "up to date" if current == head else f"behind head {head}: run `analytics-pipeline db upgrade`"
    click.echo(f"{db.describe(url)}: {current or 'base (no analytics schema)'} ({state})")


@main.command("dev")
@click.option("--no-demo", is_flag=True, help="Do not load demo data into an empty database.")
@click.option("--port", default=3000, show_default=True, help="Port of the Dagster UI.")
def dev(no_demo: bool, port: int) -> None:
    """Migrate, load demo data into an empty database, and start the Dagster UI and daemon."""
    url = _url()
    _fail_clearly(db.check_reachable, db.engine_for(url))
    migrate.upgrade(url)
    if not no_demo:
        _load_demo_if_empty(url)
    dagster_home = analytics_home() / "dagster"
    dagster_home.mkdir(parents=True, exist_ok=True)
    (dagster_home / "dagster.yaml").write_text(DAGSTER_YAML)
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home)}
    click.echo(f"analytics database: {db.describe(url)}")
    click.echo(f"Dagster UI: http://127.0.0.1:{port}  (DAGSTER_HOME={dagster_home})")
    command = [sys.executable, "-m", "dagster", "dev", "-w", "workspace.yaml", "-p", str(port)]
    process = subprocess.Popen(command, cwd=PROJECT_DIR, env=env)
    # On SIGTERM (a service manager, `timeout`) shut dagster down as Ctrl-C would.
    signal.signal(signal.SIGTERM, lambda *_: process.send_signal(signal.SIGINT))
    try:
        process.wait()
    except KeyboardInterrupt:
        process.wait()
    finally:
        if not os.environ.get("DATABASE_URL"):
            from .embedded import stop_embedded

            if stop_embedded():
                click.echo("stopped the embedded PostgreSQL server")


def _load_demo_if_empty(url: str) -> None:
    import sqlalchemy as sa

    with db.engine_for(url).connect() as conn:
        has_events = conn.execute(sa.text("SELECT EXISTS (SELECT 1 FROM analytics_events)")).scalar()
    if has_events:
        return
    try:
        from .generator import load_demo
    except ImportError:
        click.echo("no demo data generator yet: starting with empty tables")
        return
    load_demo(url)


main.add_command(reports_group)


def run() -> None:
    main(prog_name="analytics-pipeline")
