"""Failure alerts: the operators get one email per failed run, saying which run failed and why,
and an email for the failed ERROR asset checks of each run, saying which number may be wrong.

Recipients are `ALERT_EMAIL` (one address or several separated by commas). Mail goes through the
`mail` resource the reports use (SMTP_HOST, SMTP_PORT, SMTP_USERNAME, SMTP_PASSWORD, SMTP_SECURITY,
MAIL_FROM); with no SMTP_HOST the alert is written to `.analytics/outbox/`. What each alert says is
in messages.py.
"""

import os
import time
from email.message import EmailMessage

import dagster as dg
from email_validator import EmailNotValidError, validate_email

from ..core.mail import PermanentMailError, TemporaryMailError
from ..core.resources import MailResource
from ..core.settings import ConfigError
from .messages import check_failure_alert, failure_alert

RUN_FAILURE_ALERT_SENSOR = "run_failure_alert_sensor"
ASSET_CHECK_FAILURE_ALERT_SENSOR = "asset_check_failure_alert_sensor"
# Retries inside one tick: Dagster's run-status cursor moves past a run even when its alert
# raised, so a later tick would not try again. Short enough to stay well inside the 60 s tick.
RETRY_DELAYS_SECONDS = (1.0, 4.0)
# Check evaluations read per tick; more wait for the next tick.
_EVALUATIONS_PER_TICK = 500


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


def _alert_groups(records, check_keys) -> list[tuple[str, list]]:
    """The failed ERROR evaluations of this code location's checks among `records` (ascending),
    as (run id, [(storage id, evaluation)]) groups of consecutive failures of one run."""
    groups: list[tuple[str, list]] = []
    for record in records:
        evaluation = record.event_log_entry.dagster_event.asset_check_evaluation_data
        if (
            evaluation.passed
            or evaluation.severity != dg.AssetCheckSeverity.ERROR
            or (check_keys is not None and evaluation.asset_check_key not in check_keys)
        ):
            continue
        if groups and groups[-1][0] == record.run_id:
            groups[-1][1].append((record.storage_id, evaluation))
        else:
            groups.append((record.run_id, [(record.storage_id, evaluation)]))
    return groups


@dg.sensor(
    name=ASSET_CHECK_FAILURE_ALERT_SENSOR,
    description=(
        "Emails ALERT_EMAIL once for every failed ERROR asset check evaluation of this code "
        "location (a failed check does not fail its run)."
    ),
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def asset_check_failure_alert_sensor(context: dg.SensorEvaluationContext, mail: MailResource):
    # The cursor is the event storage id of the last check evaluation handled. Alerts are sent in
    # storage order and the cursor returned stops before the first one that could not be sent,
    # so that a later tick sends it (no alert lost) and nothing sent is sent again (no double
    # alert). The daemon stores the cursor after the tick: a daemon that dies between a send and
    # that store sends the alert again, with the same Message-ID.
    storage = context.instance.event_log_storage
    if storage.is_run_sharded:
        # Storage ids of a run-sharded SQLite event log are per run, so no cursor can follow them.
        return dg.SkipReason(
            "asset check alerts need an event log that is not sharded by run "
            "(PostgreSQL storage, as in deploy/dagster.yaml)"
        )
    if context.cursor is None:
        # The first tick only places the cursor: the checks failed before it were not watched.
        latest = storage.get_event_records(
            dg.EventRecordsFilter(dg.DagsterEventType.ASSET_CHECK_EVALUATION), limit=1, ascending=False
        )
        return dg.SensorResult(
            skip_reason="cursor placed at the latest asset check evaluation",
            cursor=str(latest[0].storage_id if latest else 0),
        )

    after = int(context.cursor)
    records = storage.get_event_records(
        dg.EventRecordsFilter(dg.DagsterEventType.ASSET_CHECK_EVALUATION, after_cursor=after),
        limit=_EVALUATIONS_PER_TICK,
        ascending=True,
    )
    if not records:
        return dg.SkipReason("no new asset check evaluation")
    # The checks of this code location, with their descriptions; without the repository (a
    # sensor evaluated by hand) every check is taken as this location's.
    graph = context.repository_def.asset_graph if context.repository_def else None
    check_keys = graph.asset_check_keys if graph else None
    descriptions = {key: graph.get_check_spec(key).description for key in check_keys} if graph else {}
    groups = _alert_groups(records, check_keys)
    through = records[-1].storage_id

    recipients = alert_recipients()
    if groups and not recipients:
        failed = ", ".join(sorted({run_id for run_id, _ in groups}))
        context.log.warning(f"ALERT_EMAIL is not set: no alert sent for failed asset checks of runs {failed}")
        groups = []
    for run_id, failures in groups:
        first_storage_id = failures[0][0]
        message = check_failure_alert(
            context.instance.get_run_by_id(run_id), run_id, failures, descriptions, recipients, mail.sender
        )
        try:
            where = send_with_retries(mail, message, f"asset-check-failure-{first_storage_id}.eml")
        except (TemporaryMailError, PermanentMailError) as exc:
            context.log.error(f"alert for failed asset checks of run {run_id} not sent: {exc}")
            return dg.SensorResult(
                skip_reason=f"alert for failed asset checks of run {run_id} not sent ({exc}); next tick tries again",
                cursor=str(first_storage_id - 1),
            )
        context.log.info(f"alert for {len(failures)} failed asset check(s) of run {run_id} sent to {where}")
    return dg.SensorResult(cursor=str(through))


defs = dg.Definitions(sensors=[run_failure_alert_sensor, asset_check_failure_alert_sensor])
