"""Retention of raw events: the rolling purge of `analytics_events` (docs/operations.md#retention-of-raw-events).

policy.py is the rule (how many months are kept), purge.py the purge, definitions.py the Dagster
job and sensor that run it; dagster_runs.py keeps Dagster's own run storage bounded."""

from .definitions import (
    RetentionCleanupConfig,
    defs,
    delete_expired_events,
    retention_cleanup_job,
    retention_cleanup_sensor,
)
from .policy import retention_cutoff, retention_months
from .purge import (
    BATCH_SIZE,
    MAX_WAL_MB_PER_SECOND,
    TIME_BUDGET_MINUTES,
    PurgeReport,
    RetentionRefused,
    absorbed_horizon,
    expired_events_exist,
    purge_expired_events,
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
    "retention_cutoff",
    "retention_months",
    "states_to_wait_for",
]
