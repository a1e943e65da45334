"""What retention declares to Dagster: one cleanup run of raw events per cutoff day, requested by a
sensor once the derived states have absorbed the expired events (the purge: purge.py)."""

import datetime as dt

import dagster as dg
from pydantic import Field

from ..aggregation.sources import analytics_events
from ..core.resources import AnalyticsDatabase
from ..core.settings import ConfigError
from .policy import retention_cutoff
from .purge import (
    BATCH_SIZE,
    MAX_WAL_MB_PER_SECOND,
    TIME_BUDGET_MINUTES,
    RetentionRefused,
    absorbed_horizon,
    expired_events_exist,
    purge_expired_events,
)

# Purges are observations of the source table: its page shows them and the oldest remaining event.
ANALYTICS_EVENTS = analytics_events.key


class RetentionCleanupConfig(dg.Config):
    cutoff: str | None = Field(
        default=None,
        description=(
            "ISO date: events with a timestamp before its start are deleted. Default: "
            "ANALYTICS_RETENTION_MONTHS (13) months before today; a later date is refused."
        ),
    )
    dry_run: bool = Field(default=False, description="Only count what would be deleted.")
    batch_size: int = Field(default=BATCH_SIZE, description="Rows per batch (one transaction).")
    time_budget_minutes: float = Field(
        default=TIME_BUDGET_MINUTES,
        description="No new batch starts after this; the next run continues.",
    )
    max_wal_mb_per_second: float = Field(
        default=MAX_WAL_MB_PER_SECOND,
        description=(
            "After each batch, pause until the WAL written during it averages at most this many "
            "MB per second over the batch and the pause: the platform's commits wait for that WAL."
        ),
    )

    def resolved_cutoff(self) -> dt.datetime:
        policy = retention_cutoff()
        if self.cutoff is None:
            return policy
        try:
            cutoff = dt.datetime.combine(dt.date.fromisoformat(self.cutoff), dt.time())
        except ValueError:
            raise ConfigError(f"cutoff must be a date like 2024-01-31, got {self.cutoff!r}") from None
        if cutoff > policy:
            raise ConfigError(
                f"cutoff {cutoff:%Y-%m-%d} is later than the retention policy allows "
                f"({policy:%Y-%m-%d}, ANALYTICS_RETENTION_MONTHS months ago)"
            )
        return cutoff


@dg.op(description="Delete raw events older than the retention cutoff, in short batches.")
def delete_expired_events(
    context: dg.OpExecutionContext, config: RetentionCleanupConfig, database: AnalyticsDatabase
) -> None:
    try:
        cutoff = config.resolved_cutoff()
        if config.time_budget_minutes <= 0:
            raise ConfigError(f"time_budget_minutes must be > 0, got {config.time_budget_minutes}")
        report = purge_expired_events(
            database.engine,
            cutoff,
            dry_run=config.dry_run,
            batch_size=config.batch_size,
            time_budget=dt.timedelta(minutes=config.time_budget_minutes),
            max_wal_mb_per_second=config.max_wal_mb_per_second,
            on_batch=lambda tenant_id, rows: context.log.debug(
                f"deleted {rows} events of {tenant_id}"
            ),
        )
    except RetentionRefused as exc:
        raise dg.Failure(
            description=str(exc),
            metadata={"assets_to_materialize_first": dg.MetadataValue.json(exc.assets)},
            allow_retries=False,
        ) from None
    except ConfigError as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from None
    context.log_event(dg.AssetObservation(asset_key=ANALYTICS_EVENTS, metadata=report.metadata()))
    verb = "would delete" if report.dry_run else "deleted"
    context.log.info(
        f"{verb} {report.rows} events before {cutoff:%Y-%m-%d} in {report.batches} batches "
        f"({report.duration_seconds:.1f} s, of which {report.paused_seconds:.1f} s of pauses to keep "
        f"the WAL under {config.max_wal_mb_per_second:g} MB/s)"
    )
    if report.held_back.rows:
        context.log.warning(report.held_back.describe())
    if not report.complete:
        context.log.warning(
            "the time budget ran out with expired events left; the next run continues"
        )


@dg.job(
    description=(
        "Rolling deletion of raw events older than the retention window (13 months); "
        "aggregates and derived state are never purged."
    ),
    tags={"analytics/maintenance": "retention"},
)
def retention_cleanup_job():
    delete_expired_events()


@dg.sensor(
    job=retention_cleanup_job,
    minimum_interval_seconds=3600,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Requests one retention cleanup per cutoff day (run key: the cutoff date) when an event "
        "older than the cutoff exists and every derived state has absorbed the expired events."
    ),
)
def retention_cleanup_sensor(context: dg.SensorEvaluationContext, database: AnalyticsDatabase):
    cutoff = retention_cutoff()
    with database.engine.connect() as conn:
        if not expired_events_exist(conn, cutoff):
            return dg.SkipReason(f"no event older than the cutoff {cutoff:%Y-%m-%d}")
        # A run now would be refused and would use up the day's run key; waiting instead lets
        # the cleanup start on the first tick after the states have caught up. The tick shows why.
        try:
            absorbed_horizon(conn, cutoff)
        except RetentionRefused as refused:
            return dg.SkipReason(f"cleanup waits: {refused}")
    day = cutoff.date().isoformat()
    return dg.RunRequest(
        run_key=day,
        run_config=dg.RunConfig(ops={"delete_expired_events": RetentionCleanupConfig(cutoff=day)}),
    )


defs = dg.Definitions(jobs=[retention_cleanup_job], sensors=[retention_cleanup_sensor])
