"""Alerts to `ALERT_EMAIL`: one email per failed run, and one per run's failed ERROR asset checks
(docs/operations.md, Failure alerts and Asset check alerts)."""

from .messages import check_failure_alert, failure_alert
from .sensors import (
    ASSET_CHECK_FAILURE_ALERT_SENSOR,
    RETRY_DELAYS_SECONDS,
    RUN_FAILURE_ALERT_SENSOR,
    alert_recipients,
    asset_check_failure_alert_sensor,
    defs,
    run_failure_alert_sensor,
    send_with_retries,
)

__all__ = [
    "ASSET_CHECK_FAILURE_ALERT_SENSOR",
    "RETRY_DELAYS_SECONDS",
    "RUN_FAILURE_ALERT_SENSOR",
    "alert_recipients",
    "asset_check_failure_alert_sensor",
    "check_failure_alert",
    "defs",
    "failure_alert",
    "run_failure_alert_sensor",
    "send_with_retries",
]
