"""Delivering a scheduled report once: claim, render, send, record.

The protocol, around `report_deliveries` (unique on report and scheduled time):

1. Claim, in one transaction holding the report's row lock: find the occurrence that is due
   (after downtime the latest one; the missed ones before it are skipped, not sent as a burst),
   and insert its delivery row as `sending`, or take over a `retrying` row whose backoff has
   passed, or a `sending` row whose run died more than SENDING_LEASE ago. If no row could be
   claimed, another run holds this delivery or it is done, and this run sends nothing.
2. Validate the report's configuration; a bad one fails this delivery only.
3. Read the aggregates as the tenant (row-level security) and render the message.
4. Send it (or write it to the outbox).
5. Record the outcome, in one transaction: `sent` together with last_run_at and next_run_at;
   a temporary failure as `retrying` with a backoff; after MAX_ATTEMPTS, or on a permanent
   failure, `failed` together with next_run_at, so the schedule moves on.

A run that dies between 4 and 5 leaves `sending`; after the lease the delivery is tried again
with the same Message-ID, so a receiving server or client can drop the duplicate. That window,
between the server's "250 OK" and our commit, is the only way a report can arrive twice.

next_run_at advances from the scheduled time along the report's schedule (schedule.py), never
from the moment of sending, so delivery times do not drift.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..resources import AnalyticsDatabase, MailResource, PermanentMailError, TemporaryMailError
from ..settings import ConfigError
from .config import InvalidReport, ReportConfig, ReportParameters, validate_parameters, validate_report
from .queries import organization_name, read_report
from .render import build_message, message_id_for, render
from .schedule import Anchor, anchor_for, latest_due, next_occurrence, report_period

MAX_ATTEMPTS = 5
FIRST_RETRY_DELAY = dt.timedelta(minutes=5)
MAX_RETRY_DELAY = dt.timedelta(hours=2)
SENDING_LEASE = dt.timedelta(minutes=30)

log = logging.getLogger(__name__)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def retry_delay(failed_attempts: int) -> dt.timedelta:
    """5, 10, 20, 40 minutes ... capped at two hours; the sensor's interval rounds it up."""
    return min(FIRST_RETRY_DELAY * 2 ** (failed_attempts - 1), MAX_RETRY_DELAY)


# --- What the sensor reads -------------------------------------------------------------------

DUE_SQL = sa.text(
    """
    SELECT r.id, r.tenant_id, r.next_run_at, coalesce(d.attempts, 0) AS attempts
    FROM scheduled_reports AS r
    LEFT JOIN report_deliveries AS d
           ON d.report_id = r.id AND d.scheduled_for = r.next_run_at AND d.trigger = 'schedule'
    WHERE r.is_active
      AND r.next_run_at <= :now
      AND (   d.id IS NULL
           OR (d.status = 'retrying' AND d.next_attempt_at <= :now)
           OR (d.status = 'sending' AND d.claimed_at < :stale_before))
    ORDER BY r.next_run_at, r.id
    """
)


@dataclass(frozen=True)
class DueDelivery:
    report_id: str
    tenant_id: str
    next_run_at: dt.datetime
    attempt: int  # the attempt this request makes: 1, or a retry

    @property
    def run_key(self) -> str:
        key = f"{self.report_id}:{self.next_run_at.isoformat()}"
        return key if self.attempt == 1 else f"{key}:attempt-{self.attempt}"


def due_deliveries(conn: Connection, now: dt.datetime) -> list[DueDelivery]:
    """Reports due now (the next_run_at index finds them) and retries whose backoff is over."""
    rows = conn.execute(DUE_SQL, {"now": now, "stale_before": now - SENDING_LEASE})
    return [DueDelivery(r.id, r.tenant_id, r.next_run_at, r.attempts + 1) for r in rows]


# --- The delivery ------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What a delivery run did; `metadata()` is what the run shows."""

    status: str  # sent, retrying, failed, skipped
    report_id: str
    detail: str
    scheduled_for: dt.datetime | None = None
    attempt: int = 0
    message_id: str | None = None
    recipients: tuple[str, ...] = ()
    refused: dict[str, str] = field(default_factory=dict)
    outbox_path: Path | None = None
    next_run_at: dt.datetime | None = None
    next_attempt_at: dt.datetime | None = None
    period: str | None = None
    skipped_occurrences: int = 0

    def metadata(self) -> dict[str, Any]:
        values = {
            "status": self.status,
            "report_id": self.report_id,
            "detail": self.detail,
            "scheduled_for": self.scheduled_for and self.scheduled_for.isoformat() + "Z",
            "attempt": self.attempt,
            "period": self.period,
            "message_id": self.message_id,
            "recipients": len(self.recipients),
            "refused_recipients": self.refused or None,
            "outbox_path": str(self.outbox_path) if self.outbox_path else None,
            "next_run_at": self.next_run_at and self.next_run_at.isoformat() + "Z",
            "next_attempt_at": self.next_attempt_at and self.next_attempt_at.isoformat() + "Z",
            "missed_occurrences_skipped": self.skipped_occurrences or None,
        }
        return {k: v for k, v in values.items() if v is not None}


@dataclass(frozen=True)
class _Claim:
    delivery_id: int
    report: dict  # the scheduled_reports row
    scheduled_for: dt.datetime
    attempt: int
    trigger: str
    anchor: Anchor | None  # None for a manual delivery
    skipped_occurrences: int = 0


def schedule_anchor(row: dict) -> Anchor:
    """The anchor of a report's schedule. Bad parameters still give one (UTC, from next_run_at),
    so a misconfigured report fails once per occurrence instead of on every tick."""
    try:
        parameters = validate_parameters(row["parameters"])
    except InvalidReport:
        parameters = ReportParameters()
    return anchor_for(row["frequency"], parameters, row["next_run_at"])


def deliver_scheduled(
    database: AnalyticsDatabase, mail: MailResource, report_id: str, now: dt.datetime | None = None
) -> Outcome:
    """Deliver the report's due occurrence, once, however often this is called."""
    now = now or utc_now()
    with database.transaction() as conn:
        row = conn.execute(
            sa.text("SELECT * FROM scheduled_reports WHERE id = :id FOR UPDATE"), {"id": report_id}
        ).mappings().first()
        if row is None:
            return Outcome("skipped", report_id, "the report no longer exists")
        row = dict(row)
        if not row["is_active"]:
            return Outcome("skipped", report_id, "the report is paused")
        if row["next_run_at"] > now:
            return Outcome("skipped", report_id, f"not due until {row['next_run_at']:%Y-%m-%d %H:%M} UTC",
                           next_run_at=row["next_run_at"])
        anchor = schedule_anchor(row)
        scheduled_for, skipped = latest_due(row["next_run_at"], now, anchor)
        if skipped:
            conn.execute(
                sa.text(
                    "UPDATE report_deliveries SET status = 'failed', next_attempt_at = NULL, "
                    "last_error = :why, updated_at = now() "
                    "WHERE report_id = :id AND scheduled_for < :at AND status = 'retrying'"
                ),
                {"id": report_id, "at": scheduled_for,
                 "why": f"superseded by the delivery scheduled for {scheduled_for.isoformat()}Z"},
            )
            conn.execute(
                sa.text("UPDATE scheduled_reports SET next_run_at = :at, updated_at = now() WHERE id = :id"),
                {"id": report_id, "at": scheduled_for},
            )
        claimed = conn.execute(
            sa.text(
                """
                INSERT INTO report_deliveries
                    (report_id, tenant_id, scheduled_for, trigger, status, attempts, claimed_at)
                VALUES (:id, :tenant, :at, 'schedule', 'sending', 1, :now)
                ON CONFLICT (report_id, scheduled_for) DO UPDATE
                    SET status = 'sending', attempts = report_deliveries.attempts + 1,
                        claimed_at = :now, next_attempt_at = NULL, updated_at = now()
                    WHERE (report_deliveries.status = 'retrying' AND report_deliveries.next_attempt_at <= :now)
                       OR (report_deliveries.status = 'sending' AND report_deliveries.claimed_at < :stale_before)
                RETURNING id, attempts
                """
            ),
            {"id": report_id, "tenant": row["tenant_id"], "at": scheduled_for, "now": now,
             "stale_before": now - SENDING_LEASE},
        ).first()
    if claimed is None:
        return Outcome("skipped", report_id, "this delivery is done or another run is sending it",
                       scheduled_for=scheduled_for)
    claim = _Claim(claimed.id, row, scheduled_for, claimed.attempts, "schedule", anchor, skipped)
    return _deliver(database, mail, claim, now)


def deliver_now(
    database: AnalyticsDatabase, mail: MailResource, report_id: str, now: dt.datetime | None = None
) -> Outcome:
    """Deliver the report for the latest complete period, once, without moving its schedule."""
    now = (now or utc_now()).replace(microsecond=0)
    with database.transaction() as conn:
        row = conn.execute(
            sa.text("SELECT * FROM scheduled_reports WHERE id = :id"), {"id": report_id}
        ).mappings().first()
        if row is None:
            raise ConfigError(f"no report with id {report_id!r}")
        claimed = conn.execute(
            sa.text(
                """
                INSERT INTO report_deliveries
                    (report_id, tenant_id, scheduled_for, trigger, status, attempts, claimed_at)
                VALUES (:id, :tenant, :at, 'manual', 'sending', 1, :now)
                ON CONFLICT (report_id, scheduled_for) DO NOTHING
                RETURNING id, attempts
                """
            ),
            {"id": report_id, "tenant": row["tenant_id"], "at": now, "now": now},
        ).first()
    if claimed is None:
        raise ConfigError(f"report {report_id!r} was already sent at {now:%H:%M:%S} UTC; try again in a second")
    return _deliver(database, mail, _Claim(claimed.id, dict(row), now, 1, "manual", None), now)


def _deliver(database: AnalyticsDatabase, mail: MailResource, claim: _Claim, now: dt.datetime) -> Outcome:
    row = claim.report
    try:
        report = validate_report(
            name=row["name"], report_type=row["report_type"], frequency=row["frequency"],
            recipients=row["recipients"], parameters=row["parameters"],
        )
    except InvalidReport as exc:
        return _finish(database, claim, now, "failed", f"invalid configuration: {exc}")
    period = report_period(claim.scheduled_for, report.frequency, report.parameters)
    try:
        sender = mail.sender
        message_id = message_id_for(row["id"], claim.scheduled_for, sender.domain)
        message = _compose(database, row["tenant_id"], report, period, sender, message_id, now)
        outbox_name = f"{claim.scheduled_for:%Y%m%dT%H%M%S}Z_{message_id[1:].split('@')[0]}.eml"
        receipt = mail.send(message, outbox_name)
    except (TemporaryMailError, ConfigError) as exc:
        # A mail setting the operator can fix counts as temporary: the retries pick the fix up.
        return _finish(database, claim, now, "temporary", str(exc), report=report, period=period.label)
    except PermanentMailError as exc:
        return _finish(database, claim, now, "failed", str(exc), report=report, period=period.label)
    except Exception as exc:
        _finish(database, claim, now, "temporary", f"{type(exc).__name__}: {exc}", report=report, period=period.label)
        raise
    return _finish(
        database, claim, now, "sent", None, report=report, period=period.label,
        message_id=message_id, refused=receipt.refused, outbox_path=receipt.outbox_path,
    )


def _compose(database, tenant_id, report: ReportConfig, period, sender, message_id, now):
    with database.transaction() as conn:
        organization = organization_name(conn, tenant_id)
    with database.tenant_transaction(tenant_id) as conn:
        data = read_report(conn, tenant_id, organization, report, period)
    rendered = render(data, report, sender.domain)
    return build_message(rendered, mail_from=sender, recipients=report.recipients, message_id=message_id, date=now)


def _finish(
    database: AnalyticsDatabase,
    claim: _Claim,
    now: dt.datetime,
    result: str,  # sent, temporary, failed
    error: str | None,
    *,
    report: ReportConfig | None = None,
    period: str | None = None,
    message_id: str | None = None,
    refused: dict[str, str] | None = None,
    outbox_path: Path | None = None,
) -> Outcome:
    scheduled = claim.trigger == "schedule"
    if result == "temporary" and (not scheduled or claim.attempt >= MAX_ATTEMPTS):
        result = "failed"
        error = f"{error} (attempt {claim.attempt} of {MAX_ATTEMPTS if scheduled else 1}; giving up)"
    next_attempt_at = now + retry_delay(claim.attempt) if result == "temporary" else None
    status = {"sent": "sent", "temporary": "retrying", "failed": "failed"}[result]
    if refused:
        error = "refused: " + "; ".join(f"{k}: {v}" for k, v in refused.items())
    next_run_at = None
    with database.transaction() as conn:
        recorded = conn.execute(
            sa.text(
                """
                UPDATE report_deliveries
                SET status = :status, last_error = :error, next_attempt_at = :next_attempt_at,
                    message_id = coalesce(:message_id, message_id), recipients = :recipients,
                    refused_recipients = CAST(:refused AS jsonb), sent_at = :sent_at,
                    period_start = :period_start, period_end = :period_end, updated_at = now()
                WHERE id = :id AND status = 'sending' AND attempts = :attempt
                """
            ),
            {
                "id": claim.delivery_id, "attempt": claim.attempt, "status": status, "error": error,
                "next_attempt_at": next_attempt_at, "message_id": message_id,
                "recipients": list(report.recipients) if report else None,
                "refused": json.dumps(refused) if refused else None,
                "sent_at": now if status == "sent" else None,
                "period_start": None, "period_end": None,
            } | _period_dates(claim, report),
        ).rowcount
        if not recorded:
            log.warning("delivery %s was taken over by another run; its outcome stands", claim.delivery_id)
        if scheduled and status in ("sent", "failed") and recorded:
            next_run_at = next_occurrence(claim.scheduled_for, claim.anchor)
            pins = _pins(claim, report)
            conn.execute(
                sa.text(
                    """
                    UPDATE scheduled_reports
                    SET next_run_at = :next_run_at,
                        last_run_at = CASE WHEN :sent THEN :now ELSE last_run_at END,
                        parameters = CASE WHEN CAST(:pins AS jsonb) = '{}'::jsonb THEN parameters
                                          ELSE coalesce(parameters, '{}'::jsonb) || CAST(:pins AS jsonb) END,
                        updated_at = now()
                    WHERE id = :id AND next_run_at = :scheduled_for
                    """
                ),
                {"id": claim.report["id"], "next_run_at": next_run_at, "sent": status == "sent", "now": now,
                 "pins": json.dumps(pins), "scheduled_for": claim.scheduled_for},
            )
    detail = {
        "sent": f"sent to {len(report.recipients) - len(refused or {})} of {len(report.recipients)} recipients"
        if report else "",
        "retrying": f"temporary failure, attempt {claim.attempt} of {MAX_ATTEMPTS}: {error}",
        "failed": f"failed: {error}",
    }[status]
    if status == "sent" and outbox_path:
        detail += f" (written to {outbox_path}, no SMTP_HOST configured)"
    return Outcome(
        status=status, report_id=claim.report["id"], detail=detail, scheduled_for=claim.scheduled_for,
        attempt=claim.attempt, message_id=message_id, recipients=report.recipients if report else (),
        refused=refused or {}, outbox_path=outbox_path, next_run_at=next_run_at,
        next_attempt_at=next_attempt_at, period=period, skipped_occurrences=claim.skipped_occurrences,
    )


def _period_dates(claim: _Claim, report: ReportConfig | None) -> dict:
    if report is None:
        return {}
    period = report_period(claim.scheduled_for, report.frequency, report.parameters)
    return {"period_start": period.start, "period_end": period.end}


def _pins(claim: _Claim, report: ReportConfig | None) -> dict:
    """Anchor fields the parameters leave to next_run_at, written down once, so that a monthly
    report on the 31st returns to the 31st after February. Only for valid parameters."""
    if report is None or claim.anchor is None:
        return {}
    return {k: v for k, v in claim.anchor.pinned().items() if k not in report.parameters.model_fields_set}
