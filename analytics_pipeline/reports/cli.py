"""`analytics-pipeline reports ...`: manage scheduled reports with the checks deliveries use."""

from __future__ import annotations

import datetime as dt
import getpass
import json
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click
import sqlalchemy as sa

from ..core import db
from ..core.options import NonEmptyText, WallClock
from ..core.schema import FREQUENCIES, REPORT_TYPES
from ..core.settings import ConfigError
from .schedule import anchor_for, next_occurrence, to_local
from .store import insert_report
from .validation import (
    MAX_LOOKBACK_PERIODS,
    MAX_RECIPIENTS,
    InvalidReport,
    ReportParameters,
    validate_name,
    validate_parameters,
    validate_recipients,
    validate_report,
)

# The resources and the delivery load Dagster; commands that need them import them when run.


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _database():
    from ..core.resources import AnalyticsDatabase

    try:
        database = AnalyticsDatabase(url=db.resolve_url())
        db.check_migrated(database.engine)
    except (ConfigError, db.DatabaseNotReady) as exc:
        raise click.ClickException(str(exc)) from None
    return database


def _report(conn, report_id: str) -> dict:
    row = conn.execute(
        sa.text("SELECT * FROM scheduled_reports WHERE id = :id FOR UPDATE"), {"id": report_id}
    ).mappings().first()
    if row is None:
        raise click.ClickException(f"no report with id {report_id!r} (see `analytics-pipeline reports list`)")
    return dict(row)


def _when(moment: dt.datetime, timezone: str) -> str:
    try:
        local = to_local(moment, ZoneInfo(timezone))
    except (ZoneInfoNotFoundError, ValueError):  # a bad zone in the table: show UTC
        return f"{moment:%Y-%m-%d %H:%M} UTC"
    return f"{local:%Y-%m-%d %H:%M} {timezone}"


@click.group("reports")
def reports() -> None:
    """Scheduled email reports: add, edit, list, pause, resume, delete, send now, preview, channels."""


def _checked(check):
    """A click callback running one of the checks of validation.py on the option's value."""

    def callback(ctx: click.Context, param: click.Parameter, value):
        if value is None:
            return value
        try:
            check(value)
        except InvalidReport as exc:
            raise click.BadParameter(str(exc), ctx, param) from None
        return value

    return callback


def _recipients(value) -> None:
    if value:  # `edit` without --to adds none; `add` requires it
        validate_recipients(list(value))


def _timezone(value: str) -> None:
    validate_parameters({"timezone": value})


def _parameters(ctx: click.Context, param: click.Parameter, value: str | None) -> dict:
    if value is None:
        return {}
    try:
        parameters = json.loads(value)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}", ctx, param) from None
    if not isinstance(parameters, dict):
        raise click.BadParameter("must be a JSON object", ctx, param)
    try:
        validate_parameters(parameters)
    except InvalidReport as exc:
        raise click.BadParameter(str(exc), ctx, param) from None
    return parameters


def _schedule_options(command):
    """The options `add` and `edit` share, each with the same check: a value is refused by the
    same rule whether a report is added or edited."""
    options = [
        click.option("--timezone", default=None, callback=_checked(_timezone),
                     help="IANA time zone of schedule and period, e.g. Europe/Berlin [add's default: UTC]."),
        click.option("--at", "send_time", type=WallClock(), default=None,
                     help="Local delivery time HH:MM, in --timezone [add's default: 08:00]."),
        click.option("--day-of-week", type=click.IntRange(1, 7), default=None,
                     help="Weekly: ISO weekday 1-7 [add's default: 1, Monday]."),
        click.option("--day-of-month", type=click.IntRange(1, 31), default=None,
                     help="Monthly: 1-31, last day if shorter [add's default: 1]."),
        click.option("--lookback", "lookback_periods", type=click.IntRange(1, MAX_LOOKBACK_PERIODS), default=None,
                     help="Periods covered [add's default: 1]."),
        click.option("--parameters", "parameters", default=None, callback=_parameters,
                     help="Further parameters as a JSON object (docs/operations.md)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


NAME_HELP = "Name shown in the subject."
TO_HELP = f"Recipient address (repeatable; duplicates in any case count once; at most {MAX_RECIPIENTS})."


def _given_parameters(timezone, send_time, day_of_week, day_of_month, lookback_periods, skip_empty, pdf) -> dict:
    if send_time is not None:
        send_time = send_time.strftime("%H:%M")
    given = {"timezone": timezone, "send_time": send_time, "day_of_week": day_of_week,
             "day_of_month": day_of_month, "lookback_periods": lookback_periods, "skip_empty": skip_empty,
             "pdf": pdf}
    return {k: v for k, v in given.items() if v is not None}


def _full_schedule(frequency: str, parameters: dict) -> None:
    # The schedule is written out in full, so it never depends on where next_run_at happens to fall.
    parameters.setdefault("send_time", "08:00")
    if frequency == "weekly":
        parameters.setdefault("day_of_week", 1)
    if frequency == "monthly":
        parameters.setdefault("day_of_month", 1)


@reports.command("add")
@click.option("--tenant", required=True, type=NonEmptyText(), help="Organization id the report belongs to.")
@click.option("--name", required=True, callback=_checked(validate_name), help=NAME_HELP)
@click.option("--type", "report_type", required=True, type=click.Choice(REPORT_TYPES))
@click.option("--frequency", required=True, type=click.Choice(FREQUENCIES))
@click.option("--to", "recipients", multiple=True, required=True, callback=_checked(_recipients), help=TO_HELP)
@_schedule_options
@click.option("--skip-empty", is_flag=True, default=None, help="Send nothing for a period without data.")
@click.option("--pdf", is_flag=True, default=None, help="Attach the report as PDF too.")
def add(tenant, name, report_type, frequency, recipients, timezone, send_time, day_of_week, day_of_month,
        lookback_periods, parameters, skip_empty, pdf) -> None:
    """Add a report; prints its id and first delivery time."""
    parameters |= _given_parameters(timezone, send_time, day_of_week, day_of_month, lookback_periods, skip_empty, pdf)
    _full_schedule(frequency, parameters)
    try:
        report = validate_report(name=name, report_type=report_type, frequency=frequency,
                                 recipients=list(recipients), parameters=parameters)
    except ConfigError as exc:  # the options together, e.g. --at against a send_time in --parameters
        raise click.BadParameter(str(exc), param_hint="'--parameters'") from None
    now = utc_now()
    next_run_at = next_occurrence(now, anchor_for(frequency, report.parameters, now))
    database = _database()
    with database.transaction() as conn:
        if conn.execute(sa.text("SELECT 1 FROM organizations WHERE id = :t"), {"t": tenant}).first() is None:
            raise click.ClickException(f"--tenant: no organization with id {tenant!r}")
        report_id = insert_report(conn, tenant, report, next_run_at, active=True)
    click.echo(f"added {report_id}: first delivery {_when(next_run_at, report.parameters.timezone)}")


SCHEDULE_KEYS = ("timezone", "send_time", "day_of_week", "day_of_month")


@reports.command("edit")
@click.argument("report_id")
@click.option("--name", default=None, callback=_checked(validate_name), help=NAME_HELP)
@click.option("--frequency", default=None, type=click.Choice(FREQUENCIES))
@click.option("--to", "add_recipients", multiple=True, callback=_checked(_recipients),
              help="Add a recipient (repeatable; checked as `add --to`).")
@click.option("--remove", "remove_recipients", multiple=True, help="Remove a recipient (repeatable; any case).")
@_schedule_options
@click.option("--skip-empty/--no-skip-empty", default=None, help="Send nothing for a period without data, or do.")
@click.option("--pdf/--no-pdf", default=None, help="Attach the report as PDF too, or stop.")
@click.option("--add-webhook", multiple=True, help="Deliver to this signed JSON webhook too (repeatable).")
@click.option("--add-slack", multiple=True, help="Deliver to this Slack incoming webhook too (repeatable).")
@click.option("--remove-channel", multiple=True, help="Stop delivering to this channel id (repeatable).")
def edit(report_id, name, frequency, add_recipients, remove_recipients, timezone, send_time, day_of_week,
         day_of_month, lookback_periods, parameters, skip_empty, pdf, add_webhook, add_slack, remove_channel) -> None:
    """Change REPORT_ID: recipients, name, schedule, parameters, channels. Every value is checked as
    `add` checks it; the change is recorded in report_changes. A changed schedule moves the next
    delivery to the new schedule's next occurrence."""
    channels = [("webhook", _channel_url("webhook", url, "--add-webhook")) for url in add_webhook]
    channels += [("slack", _channel_url("slack", url, "--add-slack")) for url in add_slack]
    given = parameters | _given_parameters(timezone, send_time, day_of_week, day_of_month, lookback_periods,
                                           skip_empty, pdf)
    if not (name or frequency or add_recipients or remove_recipients or given or channels or remove_channel):
        raise click.UsageError("nothing to change: give at least one option (see --help)")
    database = _database()
    with database.transaction() as conn:
        row = _report(conn, report_id)
        before = {"name": row["name"], "frequency": row["frequency"], "recipients": list(row["recipients"]),
                  "parameters": dict(row["parameters"] or {})}
        recipients = _edited_recipients(before["recipients"], add_recipients, remove_recipients)
        new_frequency = frequency or row["frequency"]
        new_parameters = before["parameters"] | given
        if frequency and frequency != row["frequency"]:
            _full_schedule(new_frequency, new_parameters)
        try:
            report = validate_report(name=name or row["name"], report_type=row["report_type"],
                                     frequency=new_frequency, recipients=recipients, parameters=new_parameters)
        except ConfigError as exc:
            hint = "'--to' / '--remove'" if str(exc).startswith("recipients") else "'--parameters'"
            raise click.BadParameter(str(exc), param_hint=hint) from None
        after = {"name": report.name, "frequency": report.frequency, "recipients": list(report.recipients),
                 "parameters": report.parameters.as_json()}
        changes = {field: {"from": before[field], "to": after[field]} for field in after if after[field] != before[field]}
        removed = _remove_channels(conn, report_id, remove_channel)
        added = [(kind, url, *_insert_channel(conn, row, kind, url)) for kind, url in channels]
        if removed:
            changes["channels_removed"] = removed
        if added:
            changes["channels_added"] = [{"id": channel_id, "kind": kind, "url": url}
                                         for kind, url, channel_id, _ in added]
        if not changes:
            click.echo(f"{report_id}: nothing changed (the values given are the report's)")
            return
        next_run_at = row["next_run_at"]
        if "frequency" in changes or any(
                before["parameters"].get(k) != after["parameters"].get(k) for k in SCHEDULE_KEYS):
            now = utc_now()
            next_run_at = next_occurrence(now, anchor_for(report.frequency, report.parameters, now))
        conn.execute(
            sa.text("UPDATE scheduled_reports SET name = :name, frequency = :frequency, recipients = :recipients, "
                    "parameters = CAST(:parameters AS jsonb), next_run_at = :next, updated_at = now() WHERE id = :id"),
            {"id": report_id, "name": report.name, "frequency": report.frequency, "recipients": list(report.recipients),
             "parameters": json.dumps(after["parameters"]), "next": next_run_at},
        )
        conn.execute(
            sa.text("INSERT INTO report_changes (report_id, changed_by, changes) "
                    "VALUES (:id, :by, CAST(:changes AS jsonb))"),
            {"id": report_id, "by": _operator(), "changes": json.dumps(changes, default=str)},
        )
    click.echo(f"edited {report_id}: {', '.join(changes)} changed; next delivery "
               f"{_when(next_run_at, report.parameters.timezone)}{'' if row['is_active'] else ' (paused)'}")
    for kind, _, channel_id, secret in added:
        _echo_channel(report_id, channel_id, kind, secret)


def _edited_recipients(current: list[str], add: tuple[str, ...], remove: tuple[str, ...]) -> list[str]:
    known = {address.casefold() for address in current}
    for address in remove:
        if address.strip().casefold() not in known:
            raise click.BadParameter(f"{address!r} is not a recipient of this report", param_hint="'--remove'")
    gone = {address.strip().casefold() for address in remove}
    return [address for address in current if address.casefold() not in gone] + list(add)


def _remove_channels(conn, report_id: str, channel_ids: tuple[str, ...]) -> list[str]:
    for channel_id in channel_ids:
        deleted = conn.execute(sa.text("DELETE FROM report_channels WHERE id = :id AND report_id = :report"),
                               {"id": channel_id, "report": report_id}).rowcount
        if not deleted:
            raise click.BadParameter(f"{channel_id!r} is not a channel of {report_id}", param_hint="'--remove-channel'")
    return list(channel_ids)


def _operator() -> str:
    """Who ran the command, for the change log: the operating-system user."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@reports.command("list")
@click.option("--tenant", default=None, help="Only this organization's reports.")
def list_reports(tenant) -> None:
    """List reports with their schedule, last delivery and unsubscribes."""
    database = _database()
    with database.transaction() as conn:
        rows = conn.execute(
            sa.text(
                """
                SELECT r.id, r.tenant_id, r.name, r.report_type, r.frequency, r.is_active, r.next_run_at,
                       coalesce(r.parameters ->> 'timezone', 'UTC') AS timezone,
                       cardinality(r.recipients) AS recipients, d.status AS last_status, d.scheduled_for AS last_for,
                       u.unsubscribed, u.last_unsubscribed
                FROM scheduled_reports AS r
                LEFT JOIN LATERAL (
                    SELECT status, scheduled_for FROM report_deliveries
                    WHERE report_id = r.id AND trigger <> 'unsubscribe' ORDER BY scheduled_for DESC LIMIT 1
                ) AS d ON true
                LEFT JOIN LATERAL (
                    SELECT count(*) AS unsubscribed, max(scheduled_for) AS last_unsubscribed FROM report_deliveries
                    WHERE report_id = r.id AND trigger = 'unsubscribe'
                ) AS u ON true
                WHERE CAST(:tenant AS text) IS NULL OR r.tenant_id = :tenant
                ORDER BY r.tenant_id, r.name, r.id
                """
            ),
            {"tenant": tenant},
        ).all()
    if not rows:
        click.echo("no reports")
        return
    for r in rows:
        state = "active" if r.is_active else "paused"
        last = f"{r.last_status} ({r.last_for:%Y-%m-%d %H:%M} UTC)" if r.last_status else "never delivered"
        left = (f"  unsubscribed: {r.unsubscribed} (latest {r.last_unsubscribed:%Y-%m-%d %H:%M} UTC)"
                if r.unsubscribed else "")
        click.echo(
            f"{r.id}  {r.tenant_id}  {r.name!r}  {r.report_type} {r.frequency}  {state}  "
            f"next {_when(r.next_run_at, r.timezone)}  {r.recipients} recipient(s)  last delivery: {last}{left}"
        )


@reports.command("pause")
@click.argument("report_id")
def pause(report_id) -> None:
    """Stop delivering REPORT_ID until resumed."""
    with _database().transaction() as conn:
        _report(conn, report_id)
        conn.execute(sa.text("UPDATE scheduled_reports SET is_active = false, updated_at = now() WHERE id = :id"),
                     {"id": report_id})
    click.echo(f"paused {report_id}")


@reports.command("resume")
@click.argument("report_id")
def resume(report_id) -> None:
    """Deliver REPORT_ID again, from its next occurrence (deliveries missed while paused are not sent)."""
    with _database().transaction() as conn:
        row = _report(conn, report_id)
        if not row["recipients"]:
            raise click.UsageError(f"{report_id} has no recipients: add one first "
                                   f"(`analytics-pipeline reports edit {report_id} --to ADDRESS`)")
        next_run_at, now = row["next_run_at"], utc_now()
        timezone = (row["parameters"] or {}).get("timezone", "UTC")
        if next_run_at <= now:
            try:
                parameters = validate_parameters(row["parameters"])
            except ConfigError:  # resumed as it is; its deliveries will record the problem
                parameters = ReportParameters()
            next_run_at = next_occurrence(now, anchor_for(row["frequency"], parameters, next_run_at))
        conn.execute(
            sa.text("UPDATE scheduled_reports SET is_active = true, next_run_at = :n, updated_at = now() WHERE id = :id"),
            {"id": report_id, "n": next_run_at},
        )
    click.echo(f"resumed {report_id}: next delivery {_when(next_run_at, timezone)}")


@reports.command("delete")
@click.argument("report_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def delete(report_id, yes) -> None:
    """Delete REPORT_ID and its delivery log."""
    if not yes:
        click.confirm(f"delete report {report_id} and its delivery log?", abort=True)
    with _database().transaction() as conn:
        _report(conn, report_id)
        conn.execute(sa.text("DELETE FROM scheduled_reports WHERE id = :id"), {"id": report_id})
    click.echo(f"deleted {report_id}")


@reports.command("send-now")
@click.argument("report_id")
def send_now(report_id) -> None:
    """Deliver REPORT_ID once now, for its latest complete period; the schedule does not move."""
    from ..core.resources import MailResource
    from .delivery import deliver_now

    database, mail = _database(), MailResource()
    try:
        outcome = deliver_now(database, mail, report_id)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if outcome.status == "skipped":  # nothing to send (skip_empty): not a failure
        click.echo(f"{report_id} ({outcome.period}): nothing sent: {outcome.detail}")
        return
    if outcome.status != "sent":
        raise click.ClickException(f"{report_id}: {outcome.detail}")
    click.echo(f"{report_id} ({outcome.period}): {outcome.detail}")
    if outcome.refused:
        for address, reply in outcome.refused.items():
            click.echo(f"  refused {address}: {reply}")


# --- Delivery: preview and channels besides email (docs/operations.md) ---------------------------


@reports.command("preview")
@click.argument("report_id")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, writable=True),
              help="Where to write the message (.eml).")
@click.option("--recipient", default=None, help="Whose message [default: the first recipient].")
def preview_command(report_id, out, recipient) -> None:
    """Write the email REPORT_ID's next occurrence would send, without sending or logging it."""
    from ..core.resources import MailResource
    from .preview import preview

    database = _database()
    try:
        result = preview(database, MailResource(), report_id, recipient)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    with open(out, "wb") as file:
        file.write(result.message.as_bytes())
    note = "; it would be skipped: the period has no data (skip_empty)" if result.would_skip else ""
    click.echo(f"wrote {out}: {result.recipient}'s message for {result.scheduled_for:%Y-%m-%d %H:%M} UTC "
               f"({result.period}){note}")


@reports.command("add-channel")
@click.argument("report_id")
@click.option("--kind", type=click.Choice(("webhook", "slack")), required=True)
@click.option("--url", required=True, help="Where to POST: the webhook's URL or Slack's incoming webhook URL.")
def add_channel(report_id, kind, url) -> None:
    """Deliver REPORT_ID to a webhook too; prints the channel id and, for a webhook, its signing secret."""
    url = _channel_url(kind, url, "--url")
    with _database().transaction() as conn:
        row = _report(conn, report_id)
        channel_id, secret = _insert_channel(conn, row, kind, url)
    _echo_channel(report_id, channel_id, kind, secret)


def _channel_url(kind: str, url: str, option: str) -> str:
    from .channels import validate_url

    try:
        return validate_url(kind, url)
    except ConfigError as exc:
        raise click.BadParameter(str(exc).removeprefix("url: "), param_hint=f"'{option}'") from None


def _insert_channel(conn, row: dict, kind: str, url: str) -> tuple[str, str | None]:
    from .channels import new_channel_id, new_secret

    channel_id, secret = new_channel_id(), new_secret() if kind == "webhook" else None
    conn.execute(
        sa.text("INSERT INTO report_channels (id, report_id, tenant_id, kind, url, secret) "
                "VALUES (:id, :report, :tenant, :kind, :url, :secret)"),
        {"id": channel_id, "report": row["id"], "tenant": row["tenant_id"], "kind": kind, "url": url,
         "secret": secret},
    )
    return channel_id, secret


def _echo_channel(report_id: str, channel_id: str, kind: str, secret: str | None) -> None:
    click.echo(f"added {channel_id} ({kind}) to {report_id}")
    if secret:
        click.echo(f"signing secret (X-Report-Signature, HMAC-SHA256): {secret}")


@reports.command("remove-channel")
@click.argument("channel_id")
def remove_channel(channel_id) -> None:
    """Stop delivering to CHANNEL_ID; its delivery log stays."""
    with _database().transaction() as conn:
        removed = conn.execute(sa.text("DELETE FROM report_channels WHERE id = :id"), {"id": channel_id}).rowcount
    if not removed:
        raise click.ClickException(f"no channel with id {channel_id!r}")
    click.echo(f"removed {channel_id}")
