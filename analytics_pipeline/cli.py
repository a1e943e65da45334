"""`analytics-pipeline`: database migrations, the local development stack, and operations."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import click

from . import db, migrate
from .options import Day, FiniteFloatRange, OneLineErrors
from .reports.cli import reports as reports_group
from .settings import PROJECT_DIR, ConfigError, analytics_home

# The production instance (storage in PostgreSQL, run queue, the analytics_db pool, run
# monitoring): `dev` runs the same, with its storage in the schema `dagster` of the analytics
# database unless DAGSTER_PG_URL names another.
DEPLOY_YAML = PROJECT_DIR / "deploy" / "dagster.yaml"
DAGSTER_SCHEMA = "dagster"
# What dev changes in it for a developer's machine (the sign-up dialog, a quicker run queue).
DEV_OVERLAY_YAML = PROJECT_DIR / "deploy" / "dagster.dev.yaml"
# `dagster dev` is the project's documented entry point until it moves to the dg CLI.
DAGSTER_DEV_WARNING_FILTER = "ignore:Function `dev_command` is superseded:FutureWarning"


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
    except (db.DatabaseNotReady, ConfigError, migrate.MigrationRefused) as exc:
        raise click.ClickException(str(exc)) from None


# Bounds that keep every value usable: a cutoff 100 years back, a day's time budget.
MAX_RETENTION_MONTHS = 1200
MAX_TIME_BUDGET_MINUTES = 24 * 60
WAL_MB_PER_SECOND_LIMIT = 100_000
MAX_TENANTS = 1_000  # tenant ids carry a three-digit index
MAX_USERS_PER_TENANT = 1_000_000


def _revision(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        return migrate.check_revision(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


@click.group(cls=OneLineErrors)
def main() -> None:
    """Analytics pipeline: revenue, retention and tournament metrics for each organization."""


@main.group("db")
def db_group() -> None:
    """Schema migrations (alembic) of the analytics database."""


@db_group.command("upgrade")
@click.argument("revision", default="head", callback=_revision)
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: head)."""
    url = _url()
    _fail_clearly(db.check_reachable, db.engine_for(url))
    migrate.upgrade(url, revision)
    click.echo(f"{db.describe(url)} is at {migrate.current_revision(url)}")


@db_group.command("downgrade")
@click.argument("revision", callback=_revision)
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION (`base` removes the analytics schema)."""
    url = _url()
    _fail_clearly(db.check_reachable, db.engine_for(url))
    _fail_clearly(migrate.downgrade, url, revision)
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
@click.option("--port", type=click.IntRange(1, 65535), default=3000, show_default=True, help="Port of the Dagster UI.")
@click.option("--api-port", type=click.IntRange(1, 65535), default=8000, show_default=True,
              help="Port of the Dashboard API and page.")
def dev(no_demo: bool, port: int, api_port: int) -> None:
    """Migrate, load demo data into an empty database, and start the Dagster UI and daemon, and
    the Dashboard API.

    On the first start (an empty database) it also launches one backfill of every aggregate over
    the demo's range and adds one demo report per frequency, delivered once the backfill is done."""
    started_at = time.monotonic()
    url = _url()
    _fail_clearly(db.check_reachable, db.engine_for(url))
    migrate.upgrade(url)
    demo_options = None if no_demo else _fail_clearly(_load_demo_if_empty, url)
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
        demo_run = _start_demo_backfill(url, dagster_home, demo_options)
    click.echo(f"analytics database: {db.describe(url)}")
    click.echo(f"Dagster UI: http://127.0.0.1:{port}  (DAGSTER_HOME={dagster_home})")
    click.echo(f"report emails: {_mail_destination()}")
    command = [sys.executable, "-m", "dagster", "dev", "-w", "workspace.yaml", "-p", str(port)]
    # dagster dev runs in a session of its own and hears of a shutdown only from here: Ctrl-C,
    # SIGINT or SIGTERM (a service manager, `timeout`) to this process become one SIGINT to it,
    # its graceful shutdown (a second one hurries it). The embedded server stops after it exits.
    # The handlers are set before the start, so that dagster dev does not inherit an ignored
    # SIGINT from a shell that started this one in the background.
    started: list[subprocess.Popen] = []

    def shut_down(*_) -> None:
        for process in started:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)

    signal.signal(signal.SIGINT, shut_down)
    signal.signal(signal.SIGTERM, shut_down)
    try:
        started.append(subprocess.Popen(command, cwd=PROJECT_DIR, env=env, start_new_session=True))
        started.append(_start_api(url, env, api_port))
        if demo_run is not None:
            threading.Thread(
                target=_finish_demo, args=(url, *demo_run, started[0], started_at), daemon=True
            ).start()
        started[0].wait()
    finally:
        _stop_api(started[1:])
        if not os.environ.get("DATABASE_URL"):
            from .embedded import stop_embedded

            if stop_embedded():
                click.echo("stopped the embedded PostgreSQL server")


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
    from .resources import MailResource

    try:
        return MailResource().describe()
    except ConfigError as exc:
        return f"not deliverable: {exc}"


def _start_demo_backfill(url: str, dagster_home, options):
    from dagster import DagsterInstance

    from . import demo

    report_ids = demo.add_demo_reports(url)
    instance = DagsterInstance.from_config(str(dagster_home))
    backfill = demo.submit_demo_backfill(instance, options.start)
    click.echo(
        f"launched the backfill {backfill.backfill_id} of every aggregate over the demo's range "
        f"(Overview > Backfills in the UI) and a run of the state they absorb: {backfill.partitions} "
        f"partitions of {len(backfill.targets)} assets; {len(report_ids)} demo reports go out when "
        "they are done"
    )
    return instance, backfill, report_ids


def _finish_demo(url: str, instance, backfill, report_ids: list[str], process, started_at: float) -> None:
    from . import demo

    try:
        demo.materialize_states(instance, backfill)
        done = demo.wait_for_backfill(instance, backfill, stop=lambda: process.poll() is not None)
    except Exception as exc:  # the stack goes on; this only follows the demo's first runs
        done = False
        if process.poll() is None:
            click.echo(f"could not follow the demo's first runs: {type(exc).__name__}: {exc}", err=True)
    if not done:
        if process.poll() is None:
            click.echo(f"the backfill {backfill.backfill_id} or the state run ended with partitions missing "
                       "(see the UI); the demo reports stay paused: `analytics-pipeline reports resume ID`")
        return
    demo.resume_demo_reports(url, report_ids)
    click.echo(
        f"every partition of the backfill is materialized, {time.monotonic() - started_at:.0f} s after "
        f"the start; the demo reports go out at the reports sensor's next tick ({_mail_destination()})"
    )


def _start_api(url: str, env: dict, port: int) -> subprocess.Popen:
    """`analytics-pipeline api` beside the UI, and the dashboard's URL with a token for one demo
    tenant (docs/api.md)."""
    import sqlalchemy as sa

    from .api.auth import mint_token, parse_ttl

    # One worker serves one developer's browser.
    command = [sys.executable, "-c", "from analytics_pipeline.cli import run; run()", "api", "--port", str(port),
               "--workers", "1"]
    process = subprocess.Popen(command, cwd=PROJECT_DIR, env=env, start_new_session=True)
    with db.engine_for(url).connect() as conn:
        tenant = conn.execute(sa.text("SELECT min(id) FROM organizations")).scalar()
    try:
        link = f"/#token={mint_token(tenant, parse_ttl('12h'))}  (demo tenant {tenant}, token valid 12 h)" if tenant else ""
    except (ValueError, ConfigError) as exc:
        link = f"  (no demo token: {exc})"
    click.echo(f"Dashboard: http://127.0.0.1:{port}{link or '/  (no tenant yet: see `analytics-pipeline api token`)'}")
    return process


def _stop_api(processes: list[subprocess.Popen]) -> None:
    """Stop the API (after dagster dev) and the embedded Redis server it started."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
    if not os.environ.get("REDIS_URL"):
        from .redis_server import stop_embedded_redis

        stop_embedded_redis()


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


def _load_demo_if_empty(url: str):
    """Load the demo into a database with no events; returns its options, None if not loaded."""
    import sqlalchemy as sa

    with db.engine_for(url).connect() as conn:
        has_events = conn.execute(sa.text("SELECT EXISTS (SELECT 1 FROM analytics_events)")).scalar()
    if has_events:
        return None
    from . import generator

    options = generator.demo_options()
    click.echo(f"the database has no events: loading the demo data set ({options.tenants} tenants, 14 months)")
    result = _load_with_progress(url, options)
    click.echo(result.summary())
    return options


def _load_with_progress(url: str, options):
    from . import generator

    # click hides the bar (printing only its label) when the output is not a terminal.
    with click.progressbar(
        length=options.tenants * options.users_per_tenant, label="simulating users", show_pos=True
    ) as bar:
        return generator.load(
            url, options, progress=bar.update, on_phase=lambda line: click.echo(f" {line}", err=True)
        )


@click.command("seed")
@click.option("--tenants", type=click.IntRange(1, MAX_TENANTS), default=3, show_default=True,
              help="Organizations to simulate.")
@click.option("--users-per-tenant", type=click.IntRange(1, MAX_USERS_PER_TENANT), default=1_000, show_default=True,
              help="Users who sign up to each organization over the range.")
@click.option("--start", type=Day(), default=None,
              help="First day (UTC) of the range. [default: 14 months before --end]")
@click.option("--end", type=Day(), default=None,
              help="Day after the range (UTC), at most today. [default: today]")
@click.option("--seed", type=click.IntRange(0, 2**31 - 1), default=0, show_default=True,
              help="Random seed: the same seed and options give the same rows.")
@click.option("--malformed-rate", type=FiniteFloatRange(0, 1), default=0.0, show_default=True,
              help="Share of events damaged so that the event contract rejects them.")
@click.option("--late-rate", type=FiniteFloatRange(0, 1), default=0.0, show_default=True,
              help="Share of events recorded (created_at) 1 to 48 hours after they happened.")
def seed_command(tenants, users_per_tenant, start, end, seed, malformed_rate, late_rate) -> None:
    """Simulate tenants, their users and events, and bulk-load them (docs/events.md)."""
    from . import generator

    end_day = end or generator.default_end()
    if end_day > generator.default_end():
        raise click.BadParameter(
            f"{end_day} is in the future (today is {generator.default_end()} UTC)", param_hint="'--end'"
        )
    start_day = start or generator.default_start(end_day)
    if start_day >= end_day:
        raise click.BadParameter(f"{start_day} is not before --end {end_day}", param_hint="'--start'")
    options = generator.SeedOptions(
        tenants=tenants, users_per_tenant=users_per_tenant, start=start_day, end=end_day, seed=seed,
        malformed_rate=malformed_rate, late_rate=late_rate,
    )
    url = _url()
    _fail_clearly(db.check_migrated, db.engine_for(url))
    click.echo(
        f"seeding {db.describe(url)}: {tenants} tenant(s) x {users_per_tenant:,} users, "
        f"{start_day} to {end_day} (exclusive), seed {seed}"
    )
    result = _fail_clearly(_load_with_progress, url, options)
    click.echo(result.summary())


main.add_command(seed_command)


@click.group("retention")
def retention_group() -> None:
    """Rolling deletion of raw events (docs/operations.md#retention-of-raw-events)."""


@retention_group.command("run")
@click.option("--dry-run", is_flag=True, help="Only count the events that would be deleted.")
@click.option(
    "--months",
    type=click.IntRange(1, MAX_RETENTION_MONTHS),
    default=None,
    help="Months of events to keep [default: ANALYTICS_RETENTION_MONTHS, else 13].",
)
@click.option(
    "--time-budget-minutes",
    type=FiniteFloatRange(0, MAX_TIME_BUDGET_MINUTES, min_open=True),
    default=10.0,
    show_default=True,
    help="No new batch starts after this; run again to continue.",
)
@click.option(
    "--max-wal-mb-per-second",
    type=FiniteFloatRange(0, WAL_MB_PER_SECOND_LIMIT, min_open=True),
    default=None,
    help="Pause after each batch so that the WAL written averages at most this "
    "[default: the cleanup run's, 16].",
)
def retention_run(
    dry_run: bool, months: int | None, time_budget_minutes: float, max_wal_mb_per_second: float | None
) -> None:
    """Delete the events older than the retention cutoff that every derived state has absorbed."""
    import datetime as dt

    # Imported here: it loads Dagster, which the other commands do not need.
    from .retention import MAX_WAL_MB_PER_SECOND, RetentionRefused, purge_expired_events
    from .settings import retention_cutoff

    url = _url()
    engine = db.engine_for(url)
    _fail_clearly(db.check_migrated, engine)
    cutoff = _fail_clearly(lambda: retention_cutoff(months=months))
    try:
        report = purge_expired_events(
            engine,
            cutoff,
            dry_run=dry_run,
            time_budget=dt.timedelta(minutes=time_budget_minutes),
            max_wal_mb_per_second=max_wal_mb_per_second or MAX_WAL_MB_PER_SECOND,
        )
    except RetentionRefused as exc:
        raise click.ClickException(str(exc)) from None
    verb = "would delete" if dry_run else "deleted"
    click.echo(
        f"cutoff {cutoff:%Y-%m-%d}: {verb} {report.rows} events in {report.batches} batches "
        f"({report.duration_seconds:.1f} s)"
    )
    for tenant_id, rows in sorted(report.rows_by_tenant.items()):
        click.echo(f"  {tenant_id}\t{rows}")
    if report.held_back.rows:
        click.echo(report.held_back.describe())
    oldest = report.oldest_remaining_timestamp
    click.echo(f"oldest remaining event: {oldest.isoformat(sep=' ') if oldest else 'none'}")
    if not report.complete:
        click.echo("the time budget ran out with expired events left: run again to continue")


main.add_command(retention_group)
main.add_command(reports_group)


# --- The Dashboard API (analytics_pipeline/api/, docs/api.md) ----------------------------------


@main.group("api", invoke_without_command=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True, help="Port to listen on.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="uvicorn worker processes  [default: API_WORKERS, else one per core, at most 4]")
@click.pass_context
def api_group(ctx: click.Context, host: str, port: int, workers: int | None) -> None:
    """Serve the Dashboard API and its page (docs/api.md); `api token` mints a token."""
    if ctx.invoked_subcommand is not None:
        return
    import uvicorn

    from .api.config import api_workers, jwt_settings
    from .redis_server import resolve_redis_url

    workers = workers or _fail_clearly(api_workers)
    url = _url()
    _fail_clearly(db.check_migrated, db.engine_for(url))
    _fail_clearly(jwt_settings)
    _fail_clearly(resolve_redis_url)
    os.environ["DATABASE_URL"] = url  # the workers' create_app() reads it
    click.echo(f"Dashboard API on http://{host}:{port}/ ({db.describe(url)}, {workers} worker{'s' if workers > 1 else ''})")
    uvicorn.run("analytics_pipeline.api.app:create_app", factory=True, host=host, port=port, workers=workers,
                access_log=False, log_level="warning")


@api_group.command("token")
@click.option("--tenant", required=True, help="tenant_id (organizations.id) the token reads.")
@click.option("--ttl", default="1h", show_default=True, help="Lifetime: 30m, 1h, 7d ...")
def api_token(tenant: str, ttl: str) -> None:
    """Print a token for one tenant, signed with API_JWT_SECRET (or the local secret)."""
    from .api.auth import mint_token, parse_ttl

    try:
        lifetime = parse_ttl(ttl)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--ttl'") from None
    if not tenant.strip():
        raise click.BadParameter("must be a tenant id", param_hint="'--tenant'")
    try:
        click.echo(mint_token(tenant, lifetime))
    except (ValueError, ConfigError) as exc:
        raise click.ClickException(str(exc)) from None


def run() -> None:
    main(prog_name="analytics-pipeline")
