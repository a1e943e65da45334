"""Where a report goes besides email: a JSON webhook signed with the channel's secret, or a Slack
incoming webhook (the same content, formatted as a Slack message).

Each channel of a report is a row of `report_channels`; its deliveries are rows of
`report_deliveries` with `channel` = the channel's id, delivered once per occurrence and retried
with backoff exactly like the email (delivery.py, claims.py).

A webhook request is a POST of `application/json` with these headers:

- `X-Report-Delivery`: `<report id>:<scheduled_for ISO>Z:<channel id>`, the same on every retry
  of one delivery, so that a receiver can drop a copy;
- `X-Report-Timestamp`: Unix seconds of this attempt;
- `X-Report-Signature`: `sha256=` + hex HMAC-SHA256, keyed with the channel's secret, of
  `<timestamp>.<body>`; a receiver recomputes it and refuses requests older than a few minutes.

A 2xx reply is delivered; 408, 425, 429, 5xx, a timeout or no connection are temporary (retried);
any other reply is permanent (the delivery fails).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..core.settings import ConfigError
from ..core.polarity import polarity
from .labels import (
    METRIC_LABELS,
    NOT_APPLICABLE,
    PLAN_DETAILS,
    PLAN_TITLE,
    SECTION_TITLES,
    change_unit,
    empty_text,
    figure_view,
    plan_label,
)
from .queries import ReportData
from .render import Rendered
from .validation import ReportConfig

KINDS = ("webhook", "slack")
TIMEOUT_SECONDS = 15.0
TEMPORARY_STATUSES = {408, 425, 429}
MAX_INLINE_ROWS = 5_000  # per table; more rows are linked (Dashboard API CSV), not inlined


class TemporaryChannelError(RuntimeError):
    pass


class PermanentChannelError(RuntimeError):
    pass


@dataclass(frozen=True)
class Channel:
    id: str
    kind: str
    url: str
    secret: str | None


def active_channels(conn: Connection, report_id: str) -> dict[str, Channel]:
    rows = conn.execute(
        sa.text("SELECT id, kind, url, secret FROM report_channels WHERE report_id = :id AND is_active "
                "ORDER BY created_at, id"),
        {"id": report_id},
    )
    return {r.id: Channel(r.id, r.kind, r.url, r.secret) for r in rows}


def new_channel_id() -> str:
    return f"ch_{secrets.token_hex(8)}"


def new_secret() -> str:
    return secrets.token_hex(32)


def validate_url(kind: str, url: str) -> str:
    if kind not in KINDS:
        raise ConfigError(f"kind: {kind!r} is not one of {', '.join(KINDS)}")
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c in url for c in "\r\n "):
        raise ConfigError(f"url: must be an http(s) URL, got {url!r}")
    if kind == "slack" and parts.scheme != "https":
        raise ConfigError("url: a Slack incoming webhook URL starts with https://")
    return url


def _number(value: Any) -> Any:
    # Amounts stay exact: decimals travel as strings ("12500.00"), counts as numbers.
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def _figure(f) -> dict:
    view = figure_view(f.metric, f.unit, f.current, f.previous, f.change_pct)
    return {"metric": f.metric, "label": METRIC_LABELS.get(f.metric, f.metric), "unit": f.unit,
            "current": _number(f.current), "previous": _number(f.previous), "change_pct": _number(f.change_pct),
            # change_pct is in percentage points for a ratio: change_unit says which.
            "change_unit": change_unit(f.unit), "polarity": polarity(f.metric), "tone": view["tone"]}


def _plans(data: ReportData) -> dict:
    """Revenue by plan (docs/reports.md#revenue-by-plan): each row's MRR and its change as a figure
    of MRR (in percent, with its polarity and tone), and the period's movements and customers."""
    table = data.plans
    rows = []
    for row in table.rows:
        view = figure_view("mrr", "amount", row["mrr"], row["previous_mrr"], row["change_pct"])
        rows.append({
            "kind": row["kind"], "plan": row["plan"], "label": plan_label(row["kind"], row["plan"], row["plan_count"]),
            "plan_count": row["plan_count"], "mrr": _number(row["mrr"]), "previous_mrr": _number(row["previous_mrr"]),
            "change_pct": _number(row["change_pct"]), "change_unit": change_unit("amount"),
            "polarity": polarity("mrr"), "tone": view["tone"],
            **{column: _number(row[column]) for column, _, _ in PLAN_DETAILS},
        })
    return {"top": table.top, "missing": not rows, "not_computed": table.pending,
            "empty_text": None if rows else empty_text("plans", table.pending), "rows": rows}


def payload(
    data: ReportData, report: ReportConfig, rendered: Rendered, *, report_id: str, tenant_id: str,
    scheduled_for: dt.datetime, csv_links: dict[str, str],
) -> dict:
    """The webhook's JSON: the report's figures, and each table's rows inline, or, for a table
    larger than an attachment may be, a link to its CSV on the Dashboard API."""
    tables = {}
    for name, table in data.tables.items():
        if name in csv_links or len(table.rows) > MAX_INLINE_ROWS:
            tables[name] = {"columns": list(table.columns), "row_count": len(table.rows), "csv_url": csv_links.get(name)}
        else:
            tables[name] = {"columns": list(table.columns), "rows": [[_number(v) for v in row] for row in table.rows]}
    return {
        "report": {"id": report_id, "tenant_id": tenant_id, "name": report.name, "type": report.report_type,
                   "frequency": report.frequency},
        "organization": rendered.context["organization"],
        "currency": data.currency,  # of every amount, figures and tables alike
        "subject": rendered.subject,
        "scheduled_for": scheduled_for.isoformat() + "Z",
        "period": {"label": data.period.label, "start": data.period.start.isoformat(),
                   "end": data.period.end.isoformat(), "previous_start": data.period.previous_start.isoformat(),
                   "previous_end": data.period.previous_end.isoformat(), "period_type": data.period.period_type,
                   "timezone": report.parameters.timezone},
        "sections": {
            section: {
                "missing": section in data.missing,
                "not_computed": section in data.pending,
                "empty_text": empty_text(section, section in data.pending) if section in data.missing else None,
                "figures": [_figure(f) for f in data.figures.get(section, [])],
                # The KPI block (docs/metrics.md#kpis): ratios as fractions, null where not applicable.
                **({"kpis": [_figure(f) for f in data.kpis]} if section == "revenue" else {}),
                # The comprehensive report's revenue by plan.
                **({"plans": _plans(data)} if section == "revenue" and data.plans is not None else {}),
            }
            for section in data.sections
        },
        "tournaments_by_format": [{"format": f, "count": n} for f, n in data.formats],
        "tables": tables,
    }


def slack_message(body: dict) -> dict:
    """The webhook payload as a Slack message (Block Kit, with `text` as the notification)."""
    blocks: list[dict] = [
        {"type": "header", "text": {"type": "plain_text", "text": body["subject"][:150]}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": (
            f"{body['period']['label']} · compared with {body['period']['previous_start']} to "
            f"{body['period']['previous_end']} · {body['period']['timezone']}")}]},
    ]
    for section, content in body["sections"].items():
        lines = [f"*{SECTION_TITLES[section]}*"]
        if content["missing"]:
            lines.append(f"_{content['empty_text']}_")
        for f in content["figures"]:
            lines.append(_slack_line(f, body["currency"], "–"))
        for f in content.get("kpis", []):
            lines.append(_slack_line(f, body["currency"], NOT_APPLICABLE))
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)[:3000]}})
        if "plans" in content:  # a block of its own: a section's text holds 3,000 characters
            lines = [f"*{PLAN_TITLE}*"]
            if content["plans"]["missing"]:
                lines.append(f"_{content['plans']['empty_text']}_")
            for row in content["plans"]["rows"]:
                figure = {"metric": "mrr", "unit": "amount", "current": row["mrr"], "previous": row["previous_mrr"],
                          "change_pct": row["change_pct"]}
                lines.append(_slack_line(figure, body["currency"], "–", label=row["label"][:100]))
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)[:3000]}})
    return {"text": body["subject"], "blocks": blocks}


SLACK_TONES = {"good": ":large_green_circle:", "bad": ":red_circle:"}


def _slack_line(f: dict, currency: str, missing: str, label: str | None = None) -> str:
    """A figure as a Slack line: the change with its arrow and, where the metric's polarity says,
    whether it is better or worse (Slack text has no colour)."""
    values = [None if f[k] is None else Decimal(str(f[k])) for k in ("current", "previous", "change_pct")]
    view = figure_view(f["metric"], f["unit"], *values, missing=missing, currency=currency)
    change = " ".join(part for part in (view["arrow"], view["change"]) if part)
    judged = f" {SLACK_TONES[view['tone']]} {view['tone_word']}" if view["tone_word"] else ""
    return f"{label or view['label']}: *{view['current']}* (previous {view['previous']}, {change}{judged})"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def post(channel: Channel, body: dict, delivery_id: str, timeout: float = TIMEOUT_SECONDS) -> int:
    """Send one delivery to the channel; returns the HTTP status, or raises Temporary- or
    PermanentChannelError."""
    document = slack_message(body) if channel.kind == "slack" else body
    data = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "analytics-pipeline-reports",
               "X-Report-Delivery": delivery_id}
    if channel.kind == "webhook":
        if not channel.secret:
            raise PermanentChannelError(f"channel {channel.id} has no secret to sign with")
        timestamp = int(time.time())
        headers |= {"X-Report-Timestamp": str(timestamp), "X-Report-Signature": signature(channel.secret, timestamp, data)}
    request = urllib.request.Request(channel.url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        reply = f"{channel.kind} {_host(channel.url)} replied {exc.code} {exc.reason}"
        if exc.code in TEMPORARY_STATUSES or exc.code >= 500:
            raise TemporaryChannelError(reply) from None
        raise PermanentChannelError(reply) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TemporaryChannelError(f"{channel.kind} {_host(channel.url)}: {type(reason).__name__}: {reason}") from None


def _host(url: str) -> str:
    # The URL of a Slack webhook is its secret: errors and logs name the host only.
    return urlsplit(url).netloc
