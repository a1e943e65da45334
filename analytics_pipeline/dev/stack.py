"""The local development stack of `analytics-pipeline dev`: the embedded servers, the demo data
and its first backfill, the Dagster UI and daemon, and the Dashboard API, started together and
stopped together (dev/shutdown.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import click

from ..core import db, migrate
from ..core.options import clearly, database_url
from ..core.settings import PROJECT_DIR, ConfigError, analytics_home
from .shutdown import Stack, start_quiet_thread

# The production instance (storage in PostgreSQL, run queue, the analytics_db pool, run
# monitoring): `dev` runs the same, with its storage in the schema `dagster` of the analytics
# database unless DAGSTER_PG_URL names another.
DEPLOY_YAML = PROJECT_DIR / "deploy" / "dagster.yaml"
DAGSTER_SCHEMA = "dagster"
# What dev changes in it for a developer's machine (the sign-up dialog, a quicker run queue).
DEV_OVERLAY_YAML = PROJECT_DIR / "deploy" / "dagster.dev.yaml"
# `dagster dev` is the project's documented entry point until it moves to the dg CLI.
DAGSTER_DEV_WARNING_FILTER = "ignore:Function `dev_command` is superseded:FutureWarning"
def run(no_demo: bool, port: int, api_port: int) -> None:
    """Migrate, load demo data into an empty database, and start the Dagster UI and daemon, and
    the Dashboard API.

    On the first start (an empty database) it also launches one backfill of every aggregate over
    the demo's range and adds one demo report per frequency, delivered once the backfill is done.
    Ctrl-C, SIGINT, SIGTERM or SIGHUP (the terminal closing) stops all of it (`Stack`)."""
    with Stack(port) as stack:
        _start(no_demo, port, api_port, stack)
        stack.wait()


def _start(no_demo: bool, port: int, api_port: int, stack: Stack) -> None:
    started_at = time.monotonic()
    url = database_url()
    clearly(db.check_reachable, db.engine_for(url))
    migrate.upgrade(url)
    demo_options, resumed = (None, False) if no_demo else clearly(_demo_to_start, url)
    from . import demo

    # The aggregates' partitions start where the data does, in this process and those it starts.
    os.environ.update(demo.partitions_start_env(url, demo_options))
    dagster_home = analytics_home() / "dagster"
    dagster_home.mkdir(parents=True, exist_ok=True)
    _write_dev_instance(dagster_home / "dagster.yaml")
    instance_env = {
        "DAGSTER_HOME": str(dagster_home),
        "DAGSTER_PG_URL": os.environ.get("DAGSTER_PG_URL") or _dagster_storage_url(url),
    }
    env = {
        **os.environ,
        **instance_env,
        "PYTHONWARNINGS": ",".join(filter(None, [os.environ.get("PYTHONWARNINGS"), DAGSTER_DEV_WARNING_FILTER])),
        # A developer sees a due report go out within half a minute, not a quarter of an hour.
        "REPORTS_SENSOR_INTERVAL_SECONDS": os.environ.get("REPORTS_SENSOR_INTERVAL_SECONDS") or "30",
        **report_links_env(api_port),
        # A single-run backfill records one "planned" event per asset instead of one per partition
        # (Dagster's opt-in, dagster-io/dagster#32242): creating the demo backfill's run of 854
        # day partitions took a minute before. The price, acceptable here: partitions of a run
        # that fails show as missing rather than failed.
        "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": os.environ.get(
            "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "1"
        ),
    }
    demo_run = None
    if demo_options is not None:
        os.environ.update(instance_env)  # the instance below reads its storage URL from there
        demo_run = _start_demo_backfill(url, demo_options, port, resumed)
    click.echo(f"analytics database: {db.describe(url)}")
    click.echo(f"Dagster UI: http://127.0.0.1:{port}  (DAGSTER_HOME={dagster_home})")
    click.echo(f"report emails: {_mail_destination()}")
    command = [sys.executable, "-m", "dagster", "dev", "-w", "workspace.yaml", "-p", str(port)]
    # dagster dev and the API run in sessions of their own, and hear of a stop only from here
    # (`Stack.stop`). The handlers are set before they start, so that dagster dev does not
    # inherit an ignored SIGINT from a shell that started this one in the background.
    stack.stopping.install()
    stack.dagster = subprocess.Popen(command, cwd=PROJECT_DIR, env=env, start_new_session=True)
    os.environ.update(instance_env)  # the stop's instance reads its storage URL from there
    stack.open_instance(dagster_home)
    stack.api = _start_api(env, api_port)
    _echo_dashboard(url, api_port)
    if demo_run is not None:
        # Its run's helpers do not hear Ctrl-C, which would make them print tracebacks.
        start_quiet_thread(_finish_demo, url, *demo_run, stack.until_stop(), started_at)


def report_links_env(api_port: int) -> dict[str, str]:
    """Report emails link the Dashboard API that dev runs (unsubscribe, large CSVs), on --api-port,
    unless DASHBOARD_URL is set."""
    return {"DASHBOARD_URL": os.environ.get("DASHBOARD_URL") or f"http://127.0.0.1:{api_port}"}


def _write_dev_instance(path) -> None:
    """deploy/dagster.yaml with deploy/dagster.dev.yaml merged over it."""
    import yaml

    def merged(base: dict, overlay: dict) -> dict:
        out = dict(base)
        for key, value in overlay.items():
            both = isinstance(value, dict) and isinstance(base.get(key), dict)
            out[key] = merged(base[key], value) if both else value
        return out

    base = yaml.safe_load(DEPLOY_YAML.read_text())
    overlay = yaml.safe_load(DEV_OVERLAY_YAML.read_text())
    path.write_text(
        f"# Written by `analytics-pipeline dev` from {DEPLOY_YAML.name} and {DEV_OVERLAY_YAML.name}.\n"
        + yaml.safe_dump(merged(base, overlay), sort_keys=False)
    )


def _mail_destination() -> str:
    from ..core.resources import MailResource

    try:
        return MailResource().describe()
    except ConfigError as exc:
        return f"not deliverable: {exc}"


def _start_demo_backfill(url: str, options, port: int, resumed: bool):
    """Add the demo reports and launch the demo's backfill, before Dagster starts: its daemon's
    first backfill iteration starts the runs. None if the backfill could not be launched (the
    next start tries again). The demo's first start is made once the backfill is done
    (`_finish_demo`).

    What a first start interrupted before its end (`resumed`) had done is not done twice: the
    demo reports it added, a backfill still in progress (followed instead), the partitions that
    runs which succeeded materialized (the backfill launched is of the others, none if none
    is left)."""
    from . import demo

    report_ids = demo.add_demo_reports(url)
    try:
        backfill = demo.demo_backfill(options.start)
        backfill_id = demo.requested_demo_backfill() if resumed else None
        todo = backfill if not resumed else None
        if resumed and backfill_id is None:
            from dagster import DagsterInstance

            with DagsterInstance.get() as instance:  # dev's, from DAGSTER_HOME
                todo = demo.partitions_to_make(instance, backfill)
        if todo is not None and todo.partitions:
            backfill_id = demo.launch_backfill(todo)
    except Exception as exc:  # the stack starts all the same
        click.echo(f"could not launch the demo's backfill: {type(exc).__name__}: {exc}; the demo reports stay "
                   "paused: `analytics-pipeline reports resume ID`", err=True)
        return None
    if todo is None:
        click.echo(f"following the backfill {backfill_id} of every aggregate over the demo's range, launched by "
                   f"the start before and still in progress (Overview > Backfills in the UI), and a run of the "
                   f"state they absorb; {len(report_ids)} demo reports go out when they are done")
    elif todo is backfill:
        click.echo(
            f"launched the backfill {backfill_id} of every aggregate over the demo's range (Overview > Backfills in "
            f"the UI) and a run of the state they absorb: {backfill.size} partitions of {backfill.assets} assets; "
            f"{len(report_ids)} demo reports go out when they are done"
        )
    elif backfill_id is not None:
        click.echo(
            f"launched the backfill {backfill_id} of the demo's partitions that no run has materialized yet "
            f"(Overview > Backfills in the UI) and a run of the state they absorb: {todo.size - len(todo.states)} "
            f"of {backfill.size - len(backfill.states)} partitions, of {len(todo.partitions)} assets; "
            f"{len(report_ids)} demo reports go out when they are done"
        )
    else:
        click.echo(f"every partition of the demo's backfill is materialized; a run of the state they absorb, then "
                   f"the {len(report_ids)} demo reports go out")
    return demo.DagsterUI(f"http://127.0.0.1:{port}"), backfill_id, backfill, report_ids


def _finish_demo(
    url: str, ui, backfill_id: str | None, backfill, report_ids: list[str], process, started_at: float
) -> None:
    """Follow the demo's backfill, beside a run of the state it absorbs; once every partition is
    materialized by a run that succeeded, resume the demo reports and mark the demo's first start
    made. Stopped, or ended with partitions missing, it leaves the mark: the next start launches
    the backfill of those left."""
    from dagster import DagsterInstance

    from . import demo

    def stopped() -> bool:
        return process.poll() is not None

    try:
        instance = DagsterInstance.get()  # dev's, from DAGSTER_HOME
        demo.materialize_states(instance, backfill)
        done = demo.wait_for_backfill(instance, ui, backfill_id, backfill, stop=stopped)
        if done:
            demo.resume_demo_reports(url, report_ids)
            demo.first_start_made(url)
    except Exception as exc:  # the stack goes on; this only follows the demo's first runs
        done = False
        if not stopped():
            click.echo(f"could not follow the demo's first runs: {type(exc).__name__}: {exc}", err=True)
    if not done:
        if not stopped():
            click.echo(f"the backfill {backfill_id} or the state run ended with partitions missing (see the UI); "
                       "the demo reports stay paused: `analytics-pipeline reports resume ID`; the next start "
                       "launches the backfill of those missing")
        return
    click.echo(
        f"every partition of the backfill is materialized, {time.monotonic() - started_at:.0f} s after "
        f"the start; the demo reports go out at the reports sensor's next tick ({_mail_destination()})"
    )


def _start_api(env: dict, port: int) -> subprocess.Popen:
    """`analytics-pipeline api` beside the UI (docs/api.md)."""
    # One worker serves one developer's browser.
    command = [sys.executable, "-c", "from analytics_pipeline.cli import run; run()", "api", "--port", str(port),
               "--workers", "1"]
    return subprocess.Popen(command, cwd=PROJECT_DIR, env=env, start_new_session=True)


def _echo_dashboard(url: str, port: int) -> None:
    """The dashboard's URL with a token for one demo tenant."""
    import sqlalchemy as sa

    from ..api.auth import mint_token, parse_ttl

    with db.engine_for(url).connect() as conn:
        tenant = conn.execute(sa.text("SELECT min(id) FROM organizations")).scalar()
    try:
        link = f"/#token={mint_token(tenant, parse_ttl('12h'))}  (demo tenant {tenant}, token valid 12 h)" if tenant else ""
    except (ValueError, ConfigError) as exc:
        link = f"  (no demo token: {exc})"
    click.echo(f"Dashboard: http://127.0.0.1:{port}{link or '/  (no tenant yet: see `analytics-pipeline api token`)'}")


def _dagster_storage_url(url: str) -> str:
    """Dagster's storage in the schema `dagster` of the analytics database (created here), named
    with the psycopg2 driver that dagster-postgres needs (docs/deployment.md)."""
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    with db.engine_for(url).begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {DAGSTER_SCHEMA}"))
    storage = make_url(db.sqlalchemy_url(url)).set(drivername="postgresql+psycopg2")
    storage = storage.update_query_dict({"options": f"-csearch_path={DAGSTER_SCHEMA}"})
    return storage.render_as_string(hide_password=False)


def _demo_to_start(url: str):
    """The demo whose first start this one makes, as its options (None if none), and whether it
    was loaded before: the demo loaded now into a database with no events, or the one a first
    start interrupted before its backfill was done had loaded (`demo.pending_first_start`).

    The load is one transaction, which also marks the first start as yet to be made: interrupted,
    it leaves nothing, and the next start loads the demo again into the empty database."""
    import dataclasses

    import sqlalchemy as sa

    from . import demo, generator

    with db.engine_for(url).connect() as conn:
        has_events = conn.execute(sa.text("SELECT EXISTS (SELECT 1 FROM analytics_events)")).scalar()
    first_day = demo.pending_first_start(url)
    if has_events and first_day is not None:
        click.echo(f"the demo data set from {first_day} is loaded, but its first start (interrupted, or its "
                   "backfill failed) has not materialized every aggregate yet: finishing it")
        return dataclasses.replace(generator.demo_options(), start=first_day), True
    if has_events:
        return None, False
    options = generator.demo_options()
    click.echo(f"the database has no events: loading the demo data set ({options.tenants} tenants, 14 months)")
    result = load_with_progress(
        url, options, before_commit=lambda conn: demo.mark_first_start_pending(conn, options.start)
    )
    click.echo(result.summary())
    return options, False


def load_with_progress(url: str, options, before_commit=None):
    from . import load

    # click hides the bar (printing only its label) when the output is not a terminal.
    with click.progressbar(
        length=options.tenants * options.users_per_tenant, label="simulating users", show_pos=True
    ) as bar:
        return load.load(
            url, options, progress=bar.update, on_phase=lambda line: click.echo(f" {line}", err=True),
            before_commit=before_commit,
        )


