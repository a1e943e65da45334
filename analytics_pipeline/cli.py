"""`analytics-pipeline`: database migrations, the local development stack, and operations."""

from __future__ import annotations

import os

import click

from .core import db, migrate
from .core.options import Day, FiniteFloatRange, OneLineErrors, clearly, database_url
from .core.settings import ConfigError
from .reports.cli import reports as reports_group

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
    url = database_url()
    clearly(db.check_reachable, db.engine_for(url))
    migrate.upgrade(url, revision)
    click.echo(f"{db.describe(url)} is at {migrate.current_revision(url)}")


@db_group.command("downgrade")
@click.argument("revision", callback=_revision)
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION (`base` removes the analytics schema)."""
    url = database_url()
    clearly(db.check_reachable, db.engine_for(url))
    clearly(migrate.downgrade, url, revision)
    click.echo(f"{db.describe(url)} is at {migrate.current_revision(url) or 'base'}")


@db_group.command("current")
def db_current() -> None:
    """Show the database's revision and whether it is the code's head."""
    url = database_url()
    clearly(db.check_reachable, db.engine_for(url))
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
    from .dev import stack

    stack.run(no_demo, port, api_port)


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
    from .dev import generator

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
    url = database_url()
    clearly(db.check_migrated, db.engine_for(url))
    click.echo(
        f"seeding {db.describe(url)}: {tenants} tenant(s) x {users_per_tenant:,} users, "
        f"{start_day} to {end_day} (exclusive), seed {seed}"
    )
    from .dev.stack import load_with_progress

    result = clearly(load_with_progress, url, options)
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
    from .retention import MAX_WAL_MB_PER_SECOND, RetentionRefused, purge_expired_events, retention_cutoff

    url = database_url()
    engine = db.engine_for(url)
    clearly(db.check_migrated, engine)
    cutoff = clearly(lambda: retention_cutoff(months=months))
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

    from .api.settings import api_workers, jwt_settings
    from .core.redis_server import resolve_redis_url

    workers = workers or clearly(api_workers)
    url = database_url()
    clearly(db.check_migrated, db.engine_for(url))
    clearly(jwt_settings)
    clearly(resolve_redis_url)
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
