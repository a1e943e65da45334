"""What the next occurrence of a report would send to one recipient, built by the same code as the
delivery, with nothing sent and nothing written (`analytics-pipeline reports preview`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from email.message import EmailMessage

import sqlalchemy as sa

from ..core.resources import AnalyticsDatabase, MailResource
from ..core.settings import ConfigError
from .claims import Claim, schedule_anchor, utc_now
from .delivery import read_data, render_delivery, validated_report
from .email_channel import recipient_message
from .schedule import latest_due, report_period


@dataclass(frozen=True)
class Preview:
    message: EmailMessage
    scheduled_for: dt.datetime
    period: str
    recipient: str
    would_skip: bool  # skip_empty and the period has no data: nothing would be sent


def preview(database: AnalyticsDatabase, mail: MailResource, report_id: str, recipient: str | None = None,
            now: dt.datetime | None = None) -> Preview:
    """The message the next occurrence would send to `recipient` (default: the first), built by
    the same code as the delivery; nothing is sent and nothing is written to the database."""
    now = now or utc_now()
    with database.transaction() as conn:
        conn.execute(sa.text("SET TRANSACTION READ ONLY"))
        row = conn.execute(sa.text("SELECT * FROM scheduled_reports WHERE id = :id"), {"id": report_id}).mappings().first()
    if row is None:
        raise ConfigError(f"no report with id {report_id!r}")
    row = dict(row)
    report = validated_report(row)
    if recipient is None:
        recipient = report.recipients[0]
    elif recipient.casefold() not in {r.casefold() for r in report.recipients}:
        raise ConfigError(f"--recipient: {recipient!r} is not a recipient of report {report_id!r}")
    else:
        recipient = next(r for r in report.recipients if r.casefold() == recipient.casefold())
    scheduled_for = row["next_run_at"]
    if scheduled_for <= now:  # overdue: the delivery would send the latest due occurrence
        scheduled_for, _ = latest_due(scheduled_for, now, schedule_anchor(row))
    period = report_period(scheduled_for, report.frequency, report.parameters)
    sender = mail.sender
    data = read_data(database, row, report, period)
    rendered = render_delivery(data, report, row, scheduled_for, sender.domain)
    claim = Claim(row, scheduled_for, "schedule", None, (), {})
    _, message = recipient_message(claim, report, rendered, sender, recipient, now, smtp=bool(mail.resolved_host))
    return Preview(message, scheduled_for, period.label, recipient,
                   would_skip=report.parameters.skip_empty and data.is_empty())
