"""What an alert says: the email about one failed run, and the one about a run's failed ERROR asset
checks (docs/operations.md, Failure alerts and Asset check alerts). The sensors that send them are
in sensors.py."""

import json
import os
from email.headerregistry import Address
from email.message import EmailMessage

import dagster as dg

# A step error can carry a whole stack trace; the alert says why, the run page has the rest.
_MAX_ERROR_CHARS = 2000
# A check's metadata can list many failing rows; the alert shows the start of each entry.
_MAX_METADATA_VALUE_CHARS = 500


def _shorten(text: str, limit: int = _MAX_ERROR_CHARS) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[:limit] + " [...]"


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


def _partitions(tags) -> str | None:
    """The partition or the partition range a run was launched for."""
    return tags.get("dagster/partition") or (
        f"{tags['dagster/asset_partition_range_start']}...{tags['dagster/asset_partition_range_end']}"
        if "dagster/asset_partition_range_start" in tags
        else None
    )


def _launched_by(tags) -> str:
    return next(
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


def failure_alert(context: dg.RunFailureSensorContext, recipients: list[str], sender: Address) -> EmailMessage:
    """The alert for one failed run: what ran, what it was launched by, and each failed step's error."""
    run = context.dagster_run
    tags = run.tags
    assets = sorted(key.to_user_string() for key in run.asset_selection or _planned_assets(context))
    what = ", ".join(assets) if assets else run.job_name
    partition = _partitions(tags)
    launched_by = _launched_by(tags)

    lines = [
        f"Run {run.run_id} failed.",
        "",
        *_run_lines(run.run_id, run.job_name, what, partition, launched_by),
        "",
        "Why:",
        f"  {context.failure_event.message}",
    ]
    step_failures = context.get_step_failure_events()
    for event in step_failures:
        error = event.step_failure_data.error
        lines += ["", f"Step {event.step_key}:", f"  {_error_text(error) if error else 'no error recorded'}"]
    run_error = context.failure_event.job_failure_data.error
    if not step_failures and run_error is not None:
        # The run failed outside any step: resource start-up, a killed worker, a timeout.
        lines += ["", f"  {_error_text(run_error)}"]

    # One Message-ID per run, so that a mail system can drop a duplicate delivery of the alert.
    return _alert_message(
        f"Run {run.run_id[:8]} failed: {what}", partition, lines, recipients, sender,
        message_id=f"run-failure-{run.run_id}",
    )


def _metadata_text(metadata) -> list[str]:
    """One line per metadata entry, each value cut short (the Checks tab has the whole value)."""
    lines = []
    for name, entry in metadata.items():
        value = entry.value if isinstance(entry, dg.MetadataValue) else entry
        if not isinstance(value, str):
            value = json.dumps(value, default=str)
        lines.append(f"  {name}: {_shorten(value, _MAX_METADATA_VALUE_CHARS)}")
    return lines


def check_failure_alert(
    run: dg.DagsterRun | None,
    run_id: str,
    failures: list[tuple[int, dg.AssetCheckEvaluation]],
    descriptions: dict[dg.AssetCheckKey, str],
    recipients: list[str],
    sender: Address,
) -> EmailMessage:
    """The alert for the failed ERROR checks of one run, given as (event storage id, evaluation)
    in storage order."""
    tags = run.tags if run else {}
    partition = _partitions(tags)
    assets = sorted({evaluation.asset_key.to_user_string() for _, evaluation in failures})
    checks = [f"{e.asset_key.to_user_string()}:{e.check_name}" for _, e in failures]
    lines = [
        f"{len(failures)} ERROR asset check{'s' if len(failures) > 1 else ''} failed in run {run_id}:"
        " the numbers below may be wrong. The run itself succeeded.",
        "",
        *_run_lines(
            run_id, run.job_name if run else "(run not found)", ", ".join(assets), partition, _launched_by(tags)
        ),
    ]
    for _, evaluation in failures:
        key = evaluation.asset_check_key
        # The spec says what the check asserts; a result's own description says what it found.
        said = [d for d in (descriptions.get(key), evaluation.description) if d]
        lines += [
            "",
            f"Check {key.name} on {key.asset_key.to_user_string()} failed (severity ERROR):",
            *(f"  {d}" for d in dict.fromkeys(said)),
            *_metadata_text(evaluation.metadata),
        ]

    # Derived from the first evaluation's storage id, which a retry of the same alert starts at
    # too, so that a mail system can drop a duplicate delivery.
    return _alert_message(
        f"Check failed in run {run_id[:8]}: {', '.join(checks)}", partition, lines, recipients, sender,
        message_id=f"asset-check-failure-{failures[0][0]}",
    )


def _run_lines(run_id: str, job: str, assets: str, partition: str | None, launched_by: str) -> list[str]:
    """What ran: the header of every alert about a run, with a link when the UI's address is known."""
    lines = [
        f"Job:         {job}",
        f"Assets:      {assets}",
        f"Partitions:  {partition or '(not partitioned)'}",
        f"Launched by: {launched_by}",
    ]
    ui_url = os.environ.get("DAGSTER_WEBSERVER_URL")
    if ui_url:
        lines.append(f"Run page:    {ui_url.rstrip('/')}/runs/{run_id}")
    return lines


def _alert_message(
    subject: str, partition: str | None, lines: list[str], recipients: list[str], sender: Address,
    *, message_id: str,
) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = f"[analytics-pipeline] {subject}" + (f" ({partition})" if partition else "")
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Message-ID"] = f"<{message_id}@analytics-pipeline>"
    message.set_content("\n".join(lines) + "\n")
    return message
