"""Failure alerts: the operators get one email per failed run, saying which run failed and why.

Recipients are `ALERT_EMAIL` (one address or several separated by commas). Mail goes through the
same settings as the reports: `SMTP_HOST`, `SMTP_PORT`, `SMTP_USERNAME`, `SMTP_PASSWORD`,
`SMTP_SECURITY` (none, starttls, ssl) and `MAIL_FROM`. With no `SMTP_HOST` (local development)
the alert is written as an .eml file under `.analytics/outbox/`.

`send_email` below is deliberately small: it is to be replaced by the project's mail resource
once that exists, keeping the message built here.
"""

from __future__ import annotations

import os
import smtplib
import ssl
import time
from dataclasses import dataclass
from email.message import EmailMessage

import dagster as dg
from email_validator import EmailNotValidError, validate_email

from .settings import ConfigError, analytics_home

RUN_FAILURE_ALERT_SENSOR = "run_failure_alert_sensor"

SMTP_SECURITY_CHOICES = ("none", "starttls", "ssl")
_DEFAULT_PORTS = {"none": 25, "starttls": 587, "ssl": 465}
# A step error can carry a whole stack trace; the alert says why, the run page has the rest.
_MAX_ERROR_CHARS = 2000


@dataclass(frozen=True)
class MailSettings:
    host: str | None
    port: int
    username: str | None
    password: str | None
    security: str
    mail_from: str

    @classmethod
    def from_env(cls) -> MailSettings:
        security = (os.environ.get("SMTP_SECURITY") or "starttls").strip().lower()
        if security not in SMTP_SECURITY_CHOICES:
            raise ConfigError(
                f"SMTP_SECURITY must be one of {', '.join(SMTP_SECURITY_CHOICES)}, got {security!r}"
            )
        raw_port = os.environ.get("SMTP_PORT") or str(_DEFAULT_PORTS[security])
        try:
            port = int(raw_port)
        except ValueError:
            port = 0
        if not 0 < port < 65536:
            raise ConfigError(f"SMTP_PORT must be a port number (1-65535), got {raw_port!r}")
        mail_from = os.environ.get("MAIL_FROM") or "analytics-pipeline@localhost"
        if "MAIL_FROM" in os.environ:
            _valid_address(mail_from, "MAIL_FROM")
        return cls(
            host=os.environ.get("SMTP_HOST") or None,
            port=port,
            username=os.environ.get("SMTP_USERNAME") or None,
            password=os.environ.get("SMTP_PASSWORD") or None,
            security=security,
            mail_from=mail_from,
        )


def _valid_address(address: str, setting: str) -> str:
    try:
        return validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ConfigError(f"{setting} must hold valid email addresses, got {address!r}: {exc}") from None


def alert_recipients() -> list[str]:
    """The addresses in `ALERT_EMAIL`; empty when it is unset."""
    raw = os.environ.get("ALERT_EMAIL", "")
    return [_valid_address(part.strip(), "ALERT_EMAIL") for part in raw.split(",") if part.strip()]


def send_email(message: EmailMessage, settings: MailSettings, *, retry_delays=(1.0, 4.0)) -> str:
    """Deliver `message` and say where it went. Temporary failures (connection refused, time-outs,
    4xx replies) are retried after `retry_delays` seconds; the last error is raised."""
    if settings.host is None:
        outbox = analytics_home() / "outbox"
        outbox.mkdir(parents=True, exist_ok=True)
        path = outbox / f"{message['Message-ID'].strip('<>').split('@')[0]}.eml"
        path.write_bytes(bytes(message))
        return f"file {path} (SMTP_HOST is not set)"
    for delay in (*retry_delays, None):
        try:
            _smtp_send(message, settings)
            return f"SMTP server {settings.host}:{settings.port}"
        except (OSError, smtplib.SMTPServerDisconnected, smtplib.SMTPResponseException) as exc:
            permanent = isinstance(exc, smtplib.SMTPResponseException) and exc.smtp_code >= 500
            if permanent or delay is None:
                raise
            time.sleep(delay)
    raise AssertionError("unreachable")


def _smtp_send(message: EmailMessage, settings: MailSettings) -> None:
    context = ssl.create_default_context()
    if settings.security == "ssl":
        client = smtplib.SMTP_SSL(settings.host, settings.port, timeout=30, context=context)
    else:
        client = smtplib.SMTP(settings.host, settings.port, timeout=30)
    with client:
        if settings.security == "starttls":
            client.starttls(context=context)
        if settings.username:
            client.login(settings.username, settings.password or "")
        client.send_message(message)


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


def failure_alert(context: dg.RunFailureSensorContext, recipients: list[str], mail_from: str) -> EmailMessage:
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
    message["From"] = mail_from
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
def run_failure_alert_sensor(context: dg.RunFailureSensorContext):
    # Dagster's cursor moves past each failed run once, whether the alert was sent or raised, so
    # a run is never alerted twice; a send that still fails after retries fails the tick visibly.
    # Returning nothing lets one tick handle every run that failed since the last one.
    run_id = context.dagster_run.run_id
    recipients = alert_recipients()
    if not recipients:
        context.log.warning(f"ALERT_EMAIL is not set: no alert sent for failed run {run_id}")
        return
    settings = MailSettings.from_env()
    where = send_email(failure_alert(context, recipients, settings.mail_from), settings)
    context.log.info(f"alert for failed run {run_id} sent to {where}")


defs = dg.Definitions(sensors=[run_failure_alert_sensor])

