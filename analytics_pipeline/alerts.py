"""Failure alerts: the operators get one email per failed run, saying which run failed and why.

Recipients are `ALERT_EMAIL` (one address or several separated by commas). Mail goes through the
`mail` resource the reports use (SMTP_HOST, SMTP_PORT, SMTP_USERNAME, SMTP_PASSWORD, SMTP_SECURITY,
MAIL_FROM); with no SMTP_HOST the alert is written to `.analytics/outbox/`.
"""

from __future__ import annotations

import os
import time
from email.headerregistry import Address
from email.message import EmailMessage

import dagster as dg
from email_validator import EmailNotValidError, validate_email

from .resources import MailResource, TemporaryMailError
from .settings import ConfigError

RUN_FAILURE_ALERT_SENSOR = "run_failure_alert_sensor"
# Retries inside one tick: Dagster's run-status cursor moves past a run even when its alert
# raised, so a later tick would not try again. Short enough to stay well inside the 60 s tick.
RETRY_DELAYS_SECONDS = (1.0, 4.0)
# A step error can carry a whole stack trace; the alert says why, the run page has the rest.
_MAX_ERROR_CHARS = 2000


def alert_recipients() -> list[str]:
    """The addresses in `ALERT_EMAIL`; empty when it is unset."""
    recipients = []
    for part in os.environ.get("ALERT_EMAIL", "").split(","):
        if part.strip():
            try:
                recipients.append(validate_email(part.strip(), check_deliverability=False).normalized)
            except EmailNotValidError as exc:
                raise ConfigError(
                    f"ALERT_EMAIL must hold email addresses separated by commas, got {part.strip()!r}: {exc}"
                ) from None
    return recipients


def send_with_retries(mail: MailResource, message: EmailMessage, outbox_name: str, delays=RETRY_DELAYS_SECONDS) -> str:
    """Send through the mail resource, trying again after each of `delays` while the failure is
    temporary; returns where the message went."""
    for delay in (*delays, None):
        try:
            receipt = mail.send(message, outbox_name)
        except TemporaryMailError:
            if delay is None:
                raise
            time.sleep(delay)
            continue
        return str(receipt.outbox_path) if receipt.outbox_path else mail.describe()
    raise AssertionError("unreachable")


def _shorten(text: str) -> str:
    text = text.strip()
    return text if len(text) <= _MAX_ERROR_CHARS else text[:_MAX_ERROR_CHARS] + " [...]"


def _error_text(error) -> str:
    """An error's message and its causes, without stack traces."""
    lines = []
    while error is not None:
        lines.append(f"{error.cls_name or 'Error'}: {error.message.strip()}")
        error = error.cause
    return _shorten("\n  caused by ".join(lines))


def _planned_assets(context: dg.RunFailureSensorContext) -> set[dg.AssetKey]:
    """The assets the run was to materialize (a run launched in Python has no asset selection)."""
    records = context.instance.get_records_for_run(
        run_id=context.dagster_run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED
    ).records
    return {r.event_log_entry.dagster_event.asset_key for r in records if r.event_log_entry.dagster_event}


def failure_alert(context: dg.RunFailureSensorContext, recipients: list[str], sender: Address) -> EmailMessage:
    """The alert for one failed run: what ran, what it was launched by, and each failed step's error."""
    run = context.dagster_run
    tags = run.tags
    assets = sorted(key.to_user_string() for key in run.asset_selection or _planned_assets(context))
    what = ", ".join(assets) if assets else run.job_name
    partition = tags.get("dagster/partition") or (
        f"{tags['dagster/asset_partition_range_start']}...{tags['dagster/asset_partition_range_end']}"
        if "dagster/asset_partition_range_start" in tags
        else None
    )
    launched_by = next(
        (
            f"{label} {tags[key]}"
            for key, label in (
                ("dagster/backfill", "backfill"),
                ("dagster/schedule_name", "schedule"),
                ("dagster/sensor_name", "sensor"),
            )
            if key in tags
        ),
        "a manual launch",
    )

    lines = [
        f"Run {run.run_id} failed.",
        "",
        f"Job:         {run.job_name}",
        f"Assets:      {what}",
        f"Partitions:  {partition or '(not partitioned)'}",
        f"Launched by: {launched_by}",
    ]
    ui_url = os.environ.get("DAGSTER_WEBSERVER_URL")
    if ui_url:
        lines.append(f"Run page:    {ui_url.rstrip('/')}/runs/{run.run_id}")
    lines += ["", "Why:", f"  {context.failure_event.message}"]
    step_failures = context.get_step_failure_events()
    for event in step_failures:
        error = event.step_failure_data.error
        lines += ["", f"Step {event.step_key}:", f"  {_error_text(error) if error else 'no error recorded'}"]
    run_error = context.failure_event.job_failure_data.error
    if not step_failures and run_error is not None:
        # The run failed outside any step: resource start-up, a killed worker, a timeout.
        lines += ["", f"  {_error_text(run_error)}"]

    message = EmailMessage()
    message["Subject"] = f"[analytics-pipeline] Run {run.run_id[:8]} failed: {what}" + (
        f" ({partition})" if partition else ""
    )
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    # One Message-ID per run, so that a mail system can drop a duplicate delivery of the alert.
    message["Message-ID"] = f"<run-failure-{run.run_id}@analytics-pipeline>"
    message.set_content("\n".join(lines) + "\n")
    return message


@dg.run_failure_sensor(
    name=RUN_FAILURE_ALERT_SENSOR,
    description="Emails ALERT_EMAIL once for every failed run of this code location, with the reason.",
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def run_failure_alert_sensor(context: dg.RunFailureSensorContext, mail: MailResource):
    # Dagster's cursor moves past each failed run once, whether the alert was sent or raised, so
    # a run is never alerted twice; a send that still fails after retries fails the tick visibly.
    # Returning nothing lets one tick handle every run that failed since the last one.
    run_id = context.dagster_run.run_id
    recipients = alert_recipients()
    if not recipients:
        context.log.warning(f"ALERT_EMAIL is not set: no alert sent for failed run {run_id}")
        return
    message = failure_alert(context, recipients, mail.sender)
    where = send_with_retries(mail, message, f"run-failure-{run_id}.eml")
    context.log.info(f"alert for failed run {run_id} sent to {where}")


defs = dg.Definitions(sensors=[run_failure_alert_sensor])

