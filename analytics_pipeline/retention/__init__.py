"""Retention of raw events: the rolling purge of `analytics_events` (docs/operations.md#retention-of-raw-events)."""

from .purge import (
    BATCH_SIZE,
    MAX_WAL_MB_PER_SECOND,
    TIME_BUDGET_MINUTES,
    PurgeReport,
    RetentionCleanupConfig,
    RetentionRefused,
    absorbed_horizon,
    defs,
    delete_expired_events,
    expired_events_exist,
    purge_expired_events,
    retention_cleanup_job,
    retention_cleanup_sensor,
    states_to_wait_for,
)

__all__ = [
    "BATCH_SIZE",
    "MAX_WAL_MB_PER_SECOND",
    "TIME_BUDGET_MINUTES",
    "PurgeReport",
    "RetentionCleanupConfig",
    "RetentionRefused",
    "absorbed_horizon",
    "defs",
    "delete_expired_events",
    "expired_events_exist",
    "purge_expired_events",
    "retention_cleanup_job",
    "retention_cleanup_sensor",
    "states_to_wait_for",
]
