"""Delivering a scheduled report once per channel: claim, render, send, record.

The protocol, around `report_deliveries` (unique on report, scheduled time and channel; the
channel is `email` or the id of one of the report's `report_channels`):

1. Claim, in one transaction holding the report's row lock: find the occurrence that is due
   (after downtime the latest one; the missed ones before it are skipped, not sent as a burst),
   and for each channel insert its delivery row as `sending`, or take over a `retrying` row whose
   backoff has passed, or a `sending` row whose run died more than SENDING_LEASE ago. If no row
   could be claimed, other runs hold these deliveries or they are done, and this run sends nothing.
2. Validate the report's configuration; a bad one fails this report's deliveries only.
3. Read the aggregates as the tenant (row-level security) and render the report once. A query or
   a chart that fails makes the claimed deliveries fail visibly (`retrying`, then `failed`, and
   the run fails, which alerts ALERT_EMAIL): a report is never sent with a part missing. A report
   with `skip_empty` whose period has no data records `skipped` and sends nothing.
4. Send: the email as one message per recipient (each carries that recipient's unsubscribe link),
   each recipient recorded in `delivered_to` as soon as the server accepted it, so a retry sends
   only to the others; each other channel as one signed POST.
5. Record the outcomes, in one transaction: `sent`; a temporary failure as `retrying` with a
   backoff; after MAX_ATTEMPTS, or on a permanent failure, `failed`. When no delivery of the
   occurrence is left `sending` or `retrying`, the same transaction sets last_run_at (if one
   was sent) and next_run_at, so the schedule moves on.

A run that dies between a server's acceptance and the record of it leaves `sending`; after the
lease the delivery is tried again with the same Message-ID (or X-Report-Delivery), so a receiving
server or client can drop the duplicate. That window is the only way a report can arrive twice.

next_run_at advances from the scheduled time along the report's schedule (schedule.py), never
from the moment of sending, so delivery times do not drift.

This module runs the steps; the rows of steps 1 and 5 are claims.py's, the email of step 4 is
email_channel.py's (its messages mime.py's) and the other channels' posts are channels.py's.
"""

from __future__ import annotations

import datetime as dt

from ..core.currency import tenant_currency
from ..core.resources import AnalyticsDatabase, MailResource
from ..core.settings import ConfigError
from . import channels as channel_posts
from .channels import PermanentChannelError, TemporaryChannelError
from .claims import EMAIL, Claim, ClaimedRow, Outcome, RowResult, claim_manual, claim_scheduled, finish, utc_now
from .email_channel import send_email
from .mime import delivery_key
from .queries import BrokenReport, ReportData, organization_name, read_report
from .render import Rendered, render
from .schedule import Period, report_period
from .validation import InvalidReport, ReportConfig, validate_report


def deliver_scheduled(
    database: AnalyticsDatabase, mail: MailResource, report_id: str, now: dt.datetime | None = None
) -> Outcome:
    """Deliver the report's due occurrence, once per channel, however often this is called."""
    now = now or utc_now()
    claim = claim_scheduled(database, report_id, now)
    if isinstance(claim, Outcome):
        return claim
    return _deliver(database, mail, claim, now)


def deliver_now(
    database: AnalyticsDatabase, mail: MailResource, report_id: str, now: dt.datetime | None = None
) -> Outcome:
    """Deliver the report for the latest complete period, once, without moving its schedule."""
    now = (now or utc_now()).replace(microsecond=0)
    return _deliver(database, mail, claim_manual(database, report_id, now), now)


def validated_report(row: dict) -> ReportConfig:
    return validate_report(
        name=row["name"], report_type=row["report_type"], frequency=row["frequency"],
        recipients=row["recipients"], parameters=row["parameters"],
    )


def read_data(database: AnalyticsDatabase, row: dict, report: ReportConfig, period: Period) -> ReportData:
    with database.transaction() as conn:
        organization = organization_name(conn, row["tenant_id"])
        currency = tenant_currency(conn, row["tenant_id"])
    with database.tenant_transaction(row["tenant_id"]) as conn:
        return read_report(conn, row["tenant_id"], organization, report, period, currency)


def render_delivery(data: ReportData, report: ReportConfig, row: dict, scheduled_for: dt.datetime,
                    domain: str) -> Rendered:
    return render(data, report, domain, delivery_key(row["id"], scheduled_for), pdf=report.parameters.pdf)


def _deliver(database: AnalyticsDatabase, mail: MailResource, claim: Claim, now: dt.datetime) -> Outcome:
    row = claim.report
    try:
        report = validated_report(row)
    except InvalidReport as exc:
        return finish(database, claim, now, [RowResult(r, "failed", f"invalid configuration: {exc}") for r in claim.rows])
    period = report_period(claim.scheduled_for, report.frequency, report.parameters)
    try:
        sender = mail.sender
        data = read_data(database, row, report, period)
        if report.parameters.skip_empty and data.is_empty():
            return finish(database, claim, now, [RowResult(r, "skipped", None) for r in claim.rows],
                          report=report, period=period)
        rendered = render_delivery(data, report, row, claim.scheduled_for, sender.domain)
        results = []
        for claimed in claim.rows:
            if claimed.channel == EMAIL:
                results.append(send_email(database, mail, claim, claimed, report, rendered, sender, now))
            else:
                results.append(_post(claim, claimed, report, rendered, data))
    except BrokenReport as exc:
        results = [RowResult(r, "temporary", f"the report could not be built: {exc}") for r in claim.rows]
        outcome = finish(database, claim, now, results, report=report, period=period)
        outcome.broken = True
        return outcome
    except ConfigError as exc:
        # A setting the operator can fix counts as temporary: the retries pick the fix up.
        return finish(database, claim, now, [RowResult(r, "temporary", str(exc)) for r in claim.rows],
                      report=report, period=period)
    except Exception as exc:
        finish(database, claim, now, [RowResult(r, "temporary", f"{type(exc).__name__}: {exc}") for r in claim.rows],
               report=report, period=period)
        raise
    return finish(database, claim, now, results, report=report, period=period)


def _post(claim: Claim, claimed: ClaimedRow, report: ReportConfig, rendered: Rendered, data: ReportData) -> RowResult:
    channel = claim.channels[claimed.channel]
    row = claim.report
    links = {left.table: left.url for left in rendered.context["left_out"] if left.table}
    body = channel_posts.payload(data, report, rendered, report_id=row["id"], tenant_id=row["tenant_id"],
                                 scheduled_for=claim.scheduled_for, csv_links=links)
    delivery_id = f"{row['id']}:{claim.scheduled_for.isoformat()}Z:{channel.id}"
    try:
        channel_posts.post(channel, body, delivery_id)
    except TemporaryChannelError as exc:
        return RowResult(claimed, "temporary", str(exc), message_id=delivery_id)
    except PermanentChannelError as exc:
        return RowResult(claimed, "failed", str(exc), message_id=delivery_id)
    return RowResult(claimed, "sent", None, message_id=delivery_id)
