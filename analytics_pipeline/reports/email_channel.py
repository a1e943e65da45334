"""The email of a delivery (step 4 of the protocol in delivery.py): one message per recipient,
each carrying that recipient's unsubscribe link, each recorded as soon as the server accepted it,
so that a retry sends only to the recipients still waiting."""

from __future__ import annotations

import datetime as dt
from email.message import EmailMessage

from ..core.resources import MailResource, PermanentMailError, TemporaryMailError
from .claims import Claim, ClaimedRow, RowResult, record_recipient
from .mime import build_message, message_id_for
from .render import Rendered
from .unsubscribe import make_token, unsubscribe_url
from .validation import ReportConfig


def recipient_message(claim: Claim, report: ReportConfig, rendered: Rendered, sender, recipient: str,
                      date: dt.datetime, *, smtp: bool) -> tuple[str, EmailMessage]:
    row = claim.report
    message_id = message_id_for(row["id"], claim.scheduled_for, sender.domain, recipient)
    token = make_token(row["id"], row["tenant_id"], recipient, claim.scheduled_for)
    # Through a real mail server the link must reach recipients: DASHBOARD_URL is then required.
    link = unsubscribe_url(token, required=smtp)
    message = build_message(rendered, mail_from=sender, recipient=recipient, message_id=message_id, date=date,
                            unsubscribe_url=link)
    return message_id, message


def send_email(database, mail: MailResource, claim: Claim, claimed: ClaimedRow, report: ReportConfig,
               rendered: Rendered, sender, now: dt.datetime) -> RowResult:
    """One message per recipient not yet served, each recorded as soon as it was accepted."""
    delivered = dict(claimed.delivered_to)
    refused: dict[str, str] = {}
    outbox_path = None
    smtp = bool(mail.resolved_host)
    with mail.session() as send:  # one SMTP connection for all the recipients
        for recipient in report.recipients:
            if recipient in delivered:
                continue
            message_id, message = recipient_message(claim, report, rendered, sender, recipient, now, smtp=smtp)
            outbox_name = f"{claim.scheduled_for:%Y%m%dT%H%M%S}Z_{message_id[1:].split('@')[0]}.eml"
            try:
                receipt = send(message, outbox_name)
            except TemporaryMailError as exc:
                error = _progress(str(exc), delivered, report)
                return RowResult(claimed, "temporary", error, delivered, refused, outbox_path)
            except PermanentMailError as exc:
                if exc.refused:  # this recipient refused for good; the others still get theirs
                    refused |= exc.refused
                    continue
                error = _progress(str(exc), delivered, report)
                return RowResult(claimed, "failed", error, delivered, refused, outbox_path)
            refused |= receipt.refused
            outbox_path = receipt.outbox_path or outbox_path
            delivered[recipient] = message_id
            record_recipient(database, claimed, recipient, message_id)
    if not delivered:
        return RowResult(claimed, "failed", f"every recipient was refused: {refused}", delivered, refused, outbox_path)
    return RowResult(claimed, "sent", None, delivered, refused, outbox_path)


def _progress(error: str, delivered: dict, report: ReportConfig) -> str:
    if not delivered:
        return error
    return f"{error} (after {len(delivered)} of {len(report.recipients)} recipients received it)"
