"""The report as an email: HTML with inline PNG charts, a plain-text alternative, CSV attachments
and, when the report asks for it, a PDF of the HTML. One message per recipient.

MIME structure, as common mail clients expect it:

    multipart/mixed
      multipart/alternative
        text/plain
        multipart/related
          text/html            (images referenced as cid:...)
          image/png ...
      text/csv ...             (attachments: the rows the report read)
      application/pdf          (parameters.pdf: the HTML with its charts)
"""

from __future__ import annotations

import datetime as dt
import email.policy
import uuid
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from .render import Rendered

HEADER_POLICY = email.policy.default.clone(max_line_length=998)

# Message-IDs of scheduled deliveries are derived from report and scheduled time, so that a
# receiver that sees the same delivery twice can drop the second copy.
MESSAGE_ID_NAMESPACE = uuid.UUID("6f0f3c8e-4d7e-4b8a-9a51-2f1f8d0c7a11")


def delivery_key(report_id: str, scheduled_for: dt.datetime) -> str:
    return str(uuid.uuid5(MESSAGE_ID_NAMESPACE, f"{report_id}\n{scheduled_for.isoformat()}"))


def message_id_for(report_id: str, scheduled_for: dt.datetime, domain: str, recipient: str) -> str:
    """Each recipient gets a message of their own (their own unsubscribe link), so the Message-ID
    names the recipient too."""
    token = uuid.uuid5(MESSAGE_ID_NAMESPACE, f"{report_id}\n{scheduled_for.isoformat()}\n{recipient.casefold()}")
    return f"<report.{token}@{domain}>"


def build_message(
    rendered: Rendered,
    *,
    mail_from: Address,
    recipient: str,
    message_id: str,
    date: dt.datetime,
    unsubscribe_url: str,
) -> EmailMessage:
    """One recipient's message: the link and the headers to unsubscribe are that recipient's."""
    message = EmailMessage()
    message["Subject"] = rendered.subject
    message["From"] = mail_from
    message["To"] = recipient
    message["Date"] = format_datetime(date.replace(tzinfo=dt.UTC))
    message["Message-ID"] = message_id
    # RFC 3834: tells vacation responders not to answer a scheduled report.
    message["Auto-Submitted"] = "auto-generated"
    # RFC 2369 and RFC 8058: the mail client's own unsubscribe button, one POST, no login.
    message["List-Unsubscribe"] = f"<{unsubscribe_url}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(rendered.text(unsubscribe_url))
    message.add_alternative(rendered.html(unsubscribe_url), subtype="html")
    html_part = message.get_payload()[1]
    for chart in rendered.charts:
        filename = chart.title.lower().replace(" ", "_") + ".png"
        html_part.add_related(
            chart.png, maintype="image", subtype="png", cid=f"<{chart.cid}>", filename=filename,
            disposition="inline",
        )
    for attachment in rendered.attachments:
        if attachment.maintype == "text":
            message.add_attachment(attachment.content.decode(), subtype=attachment.subtype, filename=attachment.filename)
        else:
            message.add_attachment(attachment.content, maintype=attachment.maintype, subtype=attachment.subtype,
                                   filename=attachment.filename)
    # The unsubscribe URL has no place to fold at 78 characters, and an RFC 2047 encoded word is
    # not a URL to a mail client: headers may run to RFC 5322's limit of 998 instead.
    message.policy = HEADER_POLICY
    return message
