"""Unsubscribing from a report through the link every report email carries (RFC 8058 one-click).

Each message goes to one recipient and carries a token signed with `UNSUBSCRIBE_SECRET` (HS256,
PyJWT) naming the report, its tenant and that recipient, and expiring TOKEN_LIFETIME after the
occurrence it was sent for. The token is derived from (report, recipient, occurrence) only, so
a preview and the delivery carry the same one. The link and the `List-Unsubscribe` header point at

    {DASHBOARD_URL}/v1/unsubscribe?token=TOKEN

unsubscribe_routes.py serves that path as a router that the Dashboard API mounts (this module has
no web framework):

- ``POST /v1/unsubscribe?token=TOKEN`` is the one-click request that mail clients send with the
  form body ``List-Unsubscribe=One-Click`` (RFC 8058 section 3.2); it calls
  ``unsubscribe(database, token)`` and answers 200 with a short text, or 400 with
  ``InvalidToken``'s message (tampered, expired, or signed with another key). No login and no
  cookie: the token is the authorisation.
- ``GET /v1/unsubscribe?token=TOKEN`` (a person following the link) only shows a page naming the
  report (``describe(token)``) with a button that POSTs the same URL; it changes nothing, because
  mail scanners fetch links in messages.

An unsubscription removes that one address from `scheduled_reports.recipients` and records a row
in `report_deliveries` (trigger `unsubscribe`, status `unsubscribed`, recipients = that address).
When the last recipient leaves, the report is paused as well. Doing it twice changes nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import jwt
import sqlalchemy as sa

from ..core.routes import UNSUBSCRIBE
from .settings import dashboard_url, unsubscribe_secret

TOKEN_LIFETIME = dt.timedelta(days=90)
AUDIENCE = "analytics-report-unsubscribe"
ALGORITHM = "HS256"


class InvalidToken(ValueError):
    """The token is not one of ours or has expired; the message says which, for the page."""


@dataclass(frozen=True)
class Subscription:
    report_id: str
    tenant_id: str
    recipient: str


@dataclass(frozen=True)
class UnsubscribeResult:
    status: str  # unsubscribed, already_unsubscribed, report_not_found
    report_id: str
    recipient: str
    report_name: str | None = None
    report_paused: bool = False  # the last recipient left

    @property
    def message(self) -> str:
        name = f"“{self.report_name}”" if self.report_name else f"report {self.report_id}"
        return {
            "unsubscribed": f"{self.recipient} will no longer receive {name}.",
            "already_unsubscribed": f"{self.recipient} does not receive {name}.",
            "report_not_found": "This report no longer exists; nothing more will be sent.",
        }[self.status]


def make_token(report_id: str, tenant_id: str, recipient: str, scheduled_for: dt.datetime) -> str:
    expires = scheduled_for.replace(tzinfo=dt.UTC) + TOKEN_LIFETIME
    claims = {"aud": AUDIENCE, "rpt": report_id, "tnt": tenant_id, "rcp": recipient, "exp": expires}
    return jwt.encode(claims, unsubscribe_secret(), algorithm=ALGORITHM)


def unsubscribe_url(token: str, *, required: bool) -> str:
    return f"{dashboard_url(required=required)}{UNSUBSCRIBE}?token={token}"


def read_token(token: str) -> Subscription:
    """The subscription a token names; raises InvalidToken when it is not valid now."""
    try:
        claims = jwt.decode(
            token, unsubscribe_secret(), algorithms=[ALGORITHM], audience=AUDIENCE,
            options={"require": ["exp", "aud"]},
        )
    except jwt.ExpiredSignatureError:
        raise InvalidToken("this unsubscribe link has expired; use the link in a more recent report") from None
    except jwt.PyJWTError:
        raise InvalidToken("this unsubscribe link is not valid") from None
    try:
        return Subscription(str(claims["rpt"]), str(claims["tnt"]), str(claims["rcp"]))
    except KeyError:
        raise InvalidToken("this unsubscribe link is not valid") from None


def describe(database, token: str) -> UnsubscribeResult:
    """What `unsubscribe` would do, for the confirmation page; changes nothing."""
    subscription = read_token(token)
    with database.tenant_transaction(subscription.tenant_id) as conn:
        row = conn.execute(
            sa.text("SELECT name, recipients FROM scheduled_reports WHERE id = :id"), {"id": subscription.report_id}
        ).first()
    if row is None:
        return UnsubscribeResult("report_not_found", subscription.report_id, subscription.recipient)
    status = "unsubscribed" if _without(row.recipients, subscription.recipient) != row.recipients else "already_unsubscribed"
    return UnsubscribeResult(status, subscription.report_id, subscription.recipient, row.name)


def unsubscribe(database, token: str) -> UnsubscribeResult:
    """Remove the token's recipient, and only that one, from the token's report, and record it in
    the delivery log. Raises InvalidToken for a tampered or expired token; runs as the token's
    tenant, so row-level security confines it to that tenant's rows."""
    subscription = read_token(token)
    with database.tenant_transaction(subscription.tenant_id) as conn:
        row = conn.execute(
            sa.text("SELECT name, recipients FROM scheduled_reports WHERE id = :id FOR UPDATE"),
            {"id": subscription.report_id},
        ).first()
        if row is None:
            return UnsubscribeResult("report_not_found", subscription.report_id, subscription.recipient)
        remaining = _without(row.recipients, subscription.recipient)
        if remaining == row.recipients:
            return UnsubscribeResult("already_unsubscribed", subscription.report_id, subscription.recipient, row.name)
        conn.execute(
            sa.text(
                "UPDATE scheduled_reports SET recipients = :remaining, "
                "is_active = is_active AND cardinality(CAST(:remaining AS text[])) > 0, "
                "updated_at = timezone('utc', now()) WHERE id = :id"
            ),
            {"id": subscription.report_id, "remaining": remaining},
        )
        conn.execute(
            sa.text(
                """
                INSERT INTO report_deliveries
                    (report_id, tenant_id, scheduled_for, trigger, status, attempts, recipients, sent_at)
                VALUES (:id, :tenant, clock_timestamp() AT TIME ZONE 'utc', 'unsubscribe', 'unsubscribed', 0,
                        ARRAY[CAST(:recipient AS text)], timezone('utc', now()))
                """
            ),
            {"id": subscription.report_id, "tenant": subscription.tenant_id, "recipient": subscription.recipient},
        )
    return UnsubscribeResult("unsubscribed", subscription.report_id, subscription.recipient, row.name,
                             report_paused=not remaining)


def _without(recipients: list[str], recipient: str) -> list[str]:
    # The token holds the normalised address; a row the platform wrote may differ in case.
    return [r for r in recipients if r.casefold() != recipient.casefold()]
