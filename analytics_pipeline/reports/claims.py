"""The state of a report's deliveries in `report_deliveries`: which occurrences are due, claiming
an occurrence's deliveries (step 1 of the protocol in delivery.py), recording what became of each
(step 5), and moving the schedule on when none of them is left open."""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..core.resources import AnalyticsDatabase
from ..core.settings import ConfigError
from .channels import Channel, active_channels
from .schedule import Anchor, Period, anchor_for, latest_due, next_occurrence
from .validation import InvalidReport, ReportConfig, ReportParameters, validate_parameters

EMAIL = "email"
MAX_ATTEMPTS = 5
FIRST_RETRY_DELAY = dt.timedelta(minutes=5)
MAX_RETRY_DELAY = dt.timedelta(hours=2)
SENDING_LEASE = dt.timedelta(minutes=30)
FINAL_STATUSES = ("sent", "failed", "skipped")

log = logging.getLogger(__name__)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def retry_delay(failed_attempts: int) -> dt.timedelta:
    """5, 10, 20, 40 minutes ... capped at two hours; the sensor's interval rounds it up."""
    return min(FIRST_RETRY_DELAY * 2 ** (failed_attempts - 1), MAX_RETRY_DELAY)


# --- What the sensor reads -------------------------------------------------------------------

# Due: the occurrence has no email delivery yet, or one of its deliveries waits for a retry or
# was left by a dead run. The attempts of all its deliveries, plus one, number the run request:
# every run that claims something adds at least one, so each request has a run key of its own.
DUE_SQL = sa.text(
    """
    SELECT r.id, r.tenant_id, r.next_run_at, coalesce(sum(d.attempts), 0) AS attempts
    FROM scheduled_reports AS r
    LEFT JOIN report_deliveries AS d
           ON d.report_id = r.id AND d.scheduled_for = r.next_run_at AND d.trigger = 'schedule'
    WHERE r.is_active
      AND r.next_run_at <= :now
    GROUP BY r.id
    HAVING count(*) FILTER (WHERE d.channel = 'email') = 0
        OR count(*) FILTER (WHERE (d.status = 'retrying' AND d.next_attempt_at <= :now)
                               OR (d.status = 'sending' AND d.claimed_at < :stale_before)) > 0
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
    return [DueDelivery(r.id, r.tenant_id, r.next_run_at, int(r.attempts) + 1) for r in rows]


# --- Claims ----------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What a delivery run did; `metadata()` is what the run shows. `status` is the email's (or,
    when only other channels were claimed, the worst of theirs); `channels` has each channel's."""

    status: str  # sent, retrying, failed, skipped
    report_id: str
    detail: str
    scheduled_for: dt.datetime | None = None
    attempt: int = 0
    message_ids: dict[str, str] = field(default_factory=dict)  # recipient -> Message-ID
    recipients: tuple[str, ...] = ()
    refused: dict[str, str] = field(default_factory=dict)
    outbox_path: Path | None = None
    next_run_at: dt.datetime | None = None
    next_attempt_at: dt.datetime | None = None
    period: str | None = None
    skipped_occurrences: int = 0
    channels: dict[str, str] = field(default_factory=dict)  # channel -> status: detail
    broken: bool = False  # a query or chart failed: the run fails so that ALERT_EMAIL hears of it

    def metadata(self) -> dict[str, Any]:
        values = {
            "status": self.status,
            "report_id": self.report_id,
            "detail": self.detail,
            "scheduled_for": self.scheduled_for and self.scheduled_for.isoformat() + "Z",
            "attempt": self.attempt,
            "period": self.period,
            "recipients": len(self.recipients),
            "refused_recipients": self.refused or None,
            "outbox_path": str(self.outbox_path) if self.outbox_path else None,
            "next_run_at": self.next_run_at and self.next_run_at.isoformat() + "Z",
            "next_attempt_at": self.next_attempt_at and self.next_attempt_at.isoformat() + "Z",
            "missed_occurrences_skipped": self.skipped_occurrences or None,
            "channels": self.channels or None,
        }
        return {k: v for k, v in values.items() if v is not None}


@dataclass(frozen=True)
class ClaimedRow:
    """One claimed delivery row: one channel of the occurrence."""

    id: int
    channel: str
    attempt: int
    delivered_to: dict[str, str]


@dataclass(frozen=True)
class Claim:
    report: dict  # the scheduled_reports row
    scheduled_for: dt.datetime
    trigger: str
    anchor: Anchor | None  # None for a manual delivery
    rows: tuple[ClaimedRow, ...]
    channels: dict[str, Channel]
    skipped_occurrences: int = 0


@dataclass
class RowResult:
    """What happened to one row; `result` is sent, temporary, failed or skipped."""

    row: ClaimedRow
    result: str
    error: str | None = None
    delivered_to: dict[str, str] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    outbox_path: Path | None = None
    message_id: str | None = None  # a webhook's X-Report-Delivery


def schedule_anchor(row: dict) -> Anchor:
    """The anchor of a report's schedule. Bad parameters still give one (UTC, from next_run_at),
    so a misconfigured report fails once per occurrence instead of on every tick."""
    try:
        parameters = validate_parameters(row["parameters"])
    except InvalidReport:
        parameters = ReportParameters()
    return anchor_for(row["frequency"], parameters, row["next_run_at"])


CLAIM_SQL = sa.text(
    """
    INSERT INTO report_deliveries
        (report_id, tenant_id, scheduled_for, trigger, status, attempts, claimed_at, channel)
    SELECT :id, :tenant, :at, :trigger, 'sending', 1, :now, channel
    FROM unnest(CAST(:channels AS text[])) AS channel
    ON CONFLICT (report_id, scheduled_for, channel) DO UPDATE
        SET status = 'sending', attempts = report_deliveries.attempts + 1,
            claimed_at = :now, next_attempt_at = NULL, updated_at = now()
        WHERE :trigger = 'schedule'
          AND (   (report_deliveries.status = 'retrying' AND report_deliveries.next_attempt_at <= :now)
               OR (report_deliveries.status = 'sending' AND report_deliveries.claimed_at < :stale_before))
    RETURNING id, attempts, channel, delivered_to
    """
)


def claim_rows(conn: Connection, row: dict, at: dt.datetime, trigger: str, now: dt.datetime,
               channels: dict[str, Channel]) -> tuple[ClaimedRow, ...]:
    claimed = conn.execute(
        CLAIM_SQL,
        {"id": row["id"], "tenant": row["tenant_id"], "at": at, "trigger": trigger, "now": now,
         "stale_before": now - SENDING_LEASE, "channels": [EMAIL, *channels]},
    ).all()
    order = [EMAIL, *channels]
    return tuple(sorted((ClaimedRow(r.id, r.channel, r.attempts, r.delivered_to or {}) for r in claimed),
                        key=lambda r: order.index(r.channel)))


def claim_scheduled(database: AnalyticsDatabase, report_id: str, now: dt.datetime) -> Claim | Outcome:
    """Step 1 for the report's due occurrence: its claimed deliveries, or, when this run has
    nothing to send, the Outcome saying why."""
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
        channels = active_channels(conn, report_id)
        # A channel removed or switched off while its delivery waited for a retry: nothing will
        # retry it, so it ends here instead of holding the occurrence open.
        conn.execute(
            sa.text(
                "UPDATE report_deliveries SET status = 'failed', next_attempt_at = NULL, updated_at = now(), "
                "last_error = 'the channel was removed or switched off before its retry' "
                "WHERE report_id = :id AND scheduled_for = :at AND trigger = 'schedule' AND status = 'retrying' "
                "AND NOT (channel = ANY(CAST(:channels AS text[])))"
            ),
            {"id": report_id, "at": scheduled_for, "channels": [EMAIL, *channels]},
        )
        rows = claim_rows(conn, row, scheduled_for, "schedule", now, channels)
        next_run_at = None if rows else _advance_if_done(conn, row, scheduled_for, anchor, None, now)
    if not rows:
        detail = "this delivery is done or another run is sending it"
        return Outcome("skipped", report_id, detail, scheduled_for=scheduled_for, next_run_at=next_run_at)
    return Claim(row, scheduled_for, "schedule", anchor, rows, channels, skipped)


def claim_manual(database: AnalyticsDatabase, report_id: str, now: dt.datetime) -> Claim:
    """Step 1 for a delivery outside the schedule, at `now`; raises ConfigError when there is
    nothing to claim."""
    with database.transaction() as conn:
        row = conn.execute(
            sa.text("SELECT * FROM scheduled_reports WHERE id = :id"), {"id": report_id}
        ).mappings().first()
        if row is None:
            raise ConfigError(f"no report with id {report_id!r}")
        channels = active_channels(conn, report_id)
        rows = claim_rows(conn, dict(row), now, "manual", now, channels)
    if not rows:
        raise ConfigError(f"report {report_id!r} was already sent at {now:%H:%M:%S} UTC; try again in a second")
    return Claim(dict(row), now, "manual", None, rows, channels)


def record_recipient(database, claimed: ClaimedRow, recipient: str, message_id: str) -> None:
    with database.transaction() as conn:
        conn.execute(
            sa.text(
                "UPDATE report_deliveries SET delivered_to = coalesce(delivered_to, '{}'::jsonb) "
                "|| jsonb_build_object(CAST(:recipient AS text), CAST(:message_id AS text)), updated_at = now() "
                "WHERE id = :id AND status = 'sending' AND attempts = :attempt"
            ),
            {"id": claimed.id, "attempt": claimed.attempt, "recipient": recipient, "message_id": message_id},
        )


# --- Outcomes --------------------------------------------------------------------------------------


def finish(
    database: AnalyticsDatabase,
    claim: Claim,
    now: dt.datetime,
    results: list[RowResult],
    *,
    report: ReportConfig | None = None,
    period: Period | None = None,
) -> Outcome:
    scheduled = claim.trigger == "schedule"
    statuses: dict[str, tuple[str, str | None, dt.datetime | None]] = {}
    next_run_at = None
    with database.transaction() as conn:
        # The report's row lock orders this with other runs finishing other channels of the same
        # occurrence, so the last of them sees every outcome and moves the schedule on.
        conn.execute(sa.text("SELECT 1 FROM scheduled_reports WHERE id = :id FOR UPDATE"), {"id": claim.report["id"]})
        for r in results:
            result, error = r.result, r.error
            if result == "temporary" and (not scheduled or r.row.attempt >= MAX_ATTEMPTS):
                result = "failed"
                error = f"{error} (attempt {r.row.attempt} of {MAX_ATTEMPTS if scheduled else 1}; giving up)"
            next_attempt_at = now + retry_delay(r.row.attempt) if result == "temporary" else None
            status = {"sent": "sent", "temporary": "retrying", "failed": "failed", "skipped": "skipped"}[result]
            if r.refused and status == "sent":
                error = "refused: " + "; ".join(f"{k}: {v}" for k, v in r.refused.items())
            recorded = conn.execute(
                sa.text(
                    """
                    UPDATE report_deliveries
                    SET status = :status, last_error = :error, next_attempt_at = :next_attempt_at,
                        message_id = coalesce(:message_id, message_id),
                        delivered_to = CASE WHEN CAST(:delivered AS jsonb) = '{}'::jsonb THEN delivered_to
                                            ELSE coalesce(delivered_to, '{}'::jsonb) || CAST(:delivered AS jsonb) END,
                        recipients = :recipients, refused_recipients = CAST(:refused AS jsonb),
                        sent_at = :sent_at, period_start = :period_start, period_end = :period_end,
                        updated_at = now()
                    WHERE id = :id AND status = 'sending' AND attempts = :attempt
                    """
                ),
                {
                    "id": r.row.id, "attempt": r.row.attempt, "status": status, "error": error,
                    "next_attempt_at": next_attempt_at, "delivered": json.dumps(r.delivered_to),
                    "message_id": r.message_id,
                    "recipients": list(report.recipients) if report and r.row.channel == EMAIL else None,
                    "refused": json.dumps(r.refused) if r.refused else None,
                    "sent_at": now if status == "sent" else None,
                    "period_start": period.start if period else None, "period_end": period.end if period else None,
                },
            ).rowcount
            if not recorded:
                log.warning("delivery %s was taken over by another run; its outcome stands", r.row.id)
            statuses[r.row.channel] = (status, error, next_attempt_at)
        if scheduled:
            next_run_at = _advance_if_done(conn, claim.report, claim.scheduled_for, claim.anchor, report, now)
    return _outcome(claim, results, statuses, report, period, next_run_at)


def _advance_if_done(conn: Connection, row: dict, scheduled_for: dt.datetime, anchor: Anchor,
                     report: ReportConfig | None, now: dt.datetime) -> dt.datetime | None:
    """When no delivery of the occurrence is left sending or retrying, move the schedule on (and
    set last_run_at if one was sent); returns the new next_run_at, or None."""
    open_rows, any_sent = conn.execute(
        sa.text(
            "SELECT count(*) FILTER (WHERE status IN ('sending', 'retrying')), coalesce(bool_or(status = 'sent'), false) "
            "FROM report_deliveries WHERE report_id = :id AND scheduled_for = :at AND trigger = 'schedule'"
        ),
        {"id": row["id"], "at": scheduled_for},
    ).one()
    if open_rows:
        return None
    next_run_at = next_occurrence(scheduled_for, anchor)
    pins = _pins(anchor, report)
    moved = conn.execute(
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
        {"id": row["id"], "next_run_at": next_run_at, "sent": any_sent, "now": now,
         "pins": json.dumps(pins), "scheduled_for": scheduled_for},
    ).rowcount
    return next_run_at if moved else None


def _detail(status: str, error: str | None, result: RowResult, report: ReportConfig | None, attempt: int) -> str:
    if status == "sent":
        if result.row.channel != EMAIL:
            return "delivered"
        total = len(report.recipients) if report else 0
        detail = f"sent to {len(result.delivered_to)} of {total} recipients"
        if result.outbox_path:
            detail += f" (written to {result.outbox_path.parent}, no SMTP_HOST configured)"
        return detail
    if status == "skipped":
        return "skipped: the period has no data (skip_empty)"
    if status == "retrying":
        return f"temporary failure, attempt {attempt} of {MAX_ATTEMPTS}: {error}"
    return f"failed: {error}"


def _outcome(claim: Claim, results: list[RowResult], statuses: dict, report: ReportConfig | None,
             period: Period | None, next_run_at: dt.datetime | None) -> Outcome:
    by_channel = {r.row.channel: r for r in results}
    details = {ch: _detail(st, err, by_channel[ch], report, by_channel[ch].row.attempt)
               for ch, (st, err, _) in statuses.items()}
    if EMAIL in statuses:
        lead = EMAIL
    else:  # only other channels were due: the worst of them
        rank = {"failed": 0, "retrying": 1, "sent": 2, "skipped": 3}
        lead = min(statuses, key=lambda ch: rank[statuses[ch][0]])
    status, _, next_attempt_at = statuses[lead]
    email = by_channel.get(EMAIL)
    return Outcome(
        status=status, report_id=claim.report["id"], detail=details[lead], scheduled_for=claim.scheduled_for,
        attempt=by_channel[lead].row.attempt,
        message_ids=dict(email.delivered_to) if email else {},
        recipients=report.recipients if report else (),
        refused=dict(email.refused) if email else {}, outbox_path=email.outbox_path if email else None,
        next_run_at=next_run_at, next_attempt_at=next_attempt_at, period=period.label if period else None,
        skipped_occurrences=claim.skipped_occurrences,
        channels={ch: f"{statuses[ch][0]}: {details[ch]}" for ch in statuses if ch != EMAIL},
    )


def _pins(anchor: Anchor | None, report: ReportConfig | None) -> dict:
    """Anchor fields the parameters leave to next_run_at, written down once, so that a monthly
    report on the 31st returns to the 31st after February. Only for valid parameters."""
    if report is None or anchor is None:
        return {}
    return {k: v for k, v in anchor.pinned().items() if k not in report.parameters.model_fields_set}
