"""The report as an email: HTML with inline PNG charts, a plain-text alternative, CSV attachments.

MIME structure, as common mail clients expect it:

    multipart/mixed
      multipart/alternative
        text/plain
        multipart/related
          text/html            (images referenced as cid:...)
          image/png ...
      text/csv ...             (attachments: the rows the report read)
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
from dataclasses import dataclass
from decimal import Decimal
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import jinja2

from . import charts
from .config import CONTROL_CHARACTERS, ReportConfig
from .queries import Figure, ReportData

# Message-IDs of scheduled deliveries are derived from report and scheduled time, so that a
# receiver that sees the same delivery twice can drop the second copy.
MESSAGE_ID_NAMESPACE = uuid.UUID("6f0f3c8e-4d7e-4b8a-9a51-2f1f8d0c7a11")

SECTION_TITLES = {"revenue": "Revenue", "users": "Users", "tournaments": "Tournaments"}
REPORT_TITLES = {
    "revenue_summary": "Revenue summary",
    "user_analytics": "User analytics",
    "tournament_performance": "Tournament performance",
    "comprehensive": "Comprehensive report",
}
METRIC_LABELS = {
    "mrr": "MRR (end of period)",
    "arr": "ARR (end of period)",
    "new_revenue": "New MRR",
    "expansion_revenue": "Expansion MRR",
    "reactivation_revenue": "Reactivation MRR",
    "contraction_revenue": "Contraction MRR",
    "churned_revenue": "Churned MRR",
    "total_revenue": "Revenue",
    "payment_count": "Payments",
    "payment_success_count": "Successful payments",
    "refund_count": "Refunds",
    "refund_amount": "Refunded amount",
    "signups": "Signups",
    "tournament_count": "Tournaments",
    "completed_count": "Completed tournaments",
    "completion_rate": "Completion rate",
    "total_players": "Player registrations",
    "avg_players": "Players per tournament",
    "avg_duration_minutes": "Average duration (minutes)",
    "revenue": "Tournament revenue",
}

_templates = jinja2.Environment(
    loader=jinja2.PackageLoader("analytics_pipeline.reports", "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def message_id_for(report_id: str, scheduled_for: dt.datetime, domain: str) -> str:
    token = uuid.uuid5(MESSAGE_ID_NAMESPACE, f"{report_id}\n{scheduled_for.isoformat()}")
    return f"<report.{token}@{domain}>"


def single_line(text: str) -> str:
    """Organisation names come from the platform unchecked; no control character may reach a header."""
    return " ".join(CONTROL_CHARACTERS.sub(" ", text).split())


def format_value(value, unit: str) -> str:
    if value is None:
        return "–"
    if unit == "count":
        return f"{int(value):,}"
    if unit == "percent":
        return f"{Decimal(value):,.1f} %"
    if unit == "number":
        return f"{Decimal(value):,.1f}"
    return f"{Decimal(value):,.2f}"


def format_change(change: Decimal | None) -> str:
    if change is None:
        return "–"
    return f"{'+' if change > 0 else ''}{change:,.1f} %"


@dataclass(frozen=True)
class Chart:
    cid: str
    title: str
    png: bytes


@dataclass(frozen=True)
class Rendered:
    subject: str
    html: str
    text: str
    charts: tuple[Chart, ...]
    attachments: tuple[tuple[str, str], ...]  # (filename, CSV text)


def csv_text(columns, rows) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if v is None else v.isoformat() if isinstance(v, dt.date) else v for v in row])
    return buffer.getvalue()


def _figure_rows(figures: list[Figure]) -> list[dict]:
    return [
        {
            "label": METRIC_LABELS.get(f.metric, f.metric),
            "current": format_value(f.current, f.unit),
            "previous": format_value(f.previous, f.unit),
            "change": format_change(f.change_pct),
            "direction": "flat" if not f.change_pct else ("up" if f.change_pct > 0 else "down"),
        }
        for f in figures
    ]


def _charts(data: ReportData, domain: str) -> dict[str, list[Chart]]:
    def chart(title: str, png: bytes) -> Chart:
        return Chart(make_msgid("chart", domain)[1:-1], title, png)

    out: dict[str, list[Chart]] = {s: [] for s in data.sections}
    if "revenue" in data.sections:
        days = [r for r in data.tables["revenue_aggregates"].records() if r["period_type"] == "day"]
        if days:
            out["revenue"].append(chart("MRR trend", charts.line_chart(
                "MRR trend (daily)", [f"{r['period_start']:%d %b}" for r in days], [r["mrr"] for r in days])))
        in_period = [r for r in days if data.period.start <= r["period_start"] <= data.period.end]
        if in_period:
            out["revenue"].append(chart("Revenue by day", charts.bar_chart(
                "Revenue by day", [f"{r['period_start']:%d %b}" for r in in_period],
                [r["total_revenue"] for r in in_period])))
    if "users" in data.sections:
        rows = data.tables["user_cohorts"].records()
        if rows:
            cohorts = sorted({f"{r['cohort_month']:%Y-%m}" for r in rows})
            months = max(r["month_number"] for r in rows) + 1
            rates = {(f"{r['cohort_month']:%Y-%m}", r["month_number"]): r["retention_rate"] for r in rows}
            out["users"].append(chart("Retention by cohort", charts.heat_table(
                "Retention by signup cohort (% of cohort active)", cohorts, months, rates)))
    if "tournaments" in data.sections and data.formats:
        out["tournaments"].append(chart("Tournaments by format", charts.bar_chart(
            "Tournaments created by format", [f for f, _ in data.formats], [n for _, n in data.formats],
            horizontal=True)))
    return out


def _triangle(data: ReportData) -> dict | None:
    if "users" not in data.sections or not data.tables["user_cohorts"].rows:
        return None
    rows = data.tables["user_cohorts"].records()
    months = max(r["month_number"] for r in rows) + 1
    by_cohort: dict[dt.date, dict] = {}
    for r in rows:
        entry = by_cohort.setdefault(r["cohort_month"], {"size": r["cohort_size"], "cells": {}, "ltv": None})
        entry["cells"][r["month_number"]] = r["retention_rate"]
        entry["ltv"] = r["ltv"]  # rows come ordered by month_number: the last is the latest LTV
    return {
        "months": list(range(months)),
        "cohorts": [
            {
                "label": f"{month:%b %Y}",
                "size": f"{entry['size']:,}",
                "ltv": format_value(entry["ltv"], "amount"),
                "cells": [
                    None if m not in entry["cells"] else
                    {"text": f"{entry['cells'][m]:.0f}", "shade": _shade(entry["cells"][m])}
                    for m in range(months)
                ],
            }
            for month, entry in sorted(by_cohort.items())
        ],
    }


def _shade(rate: Decimal) -> str:
    # White to the chart's blue, so the HTML table reads like the heat chart.
    t = max(0.0, min(1.0, float(rate) / 100))
    r, g, b = (int(255 + (c - 255) * t) for c in (37, 99, 235))
    return f"#{r:02x}{g:02x}{b:02x}"


def render(data: ReportData, report: ReportConfig, domain: str) -> Rendered:
    organization = single_line(data.organization)
    subject = f"{organization}: {report.name} – {data.period.label}"
    chart_map = _charts(data, domain)
    sections = [
        {
            "key": key,
            "title": SECTION_TITLES[key],
            "figures": _figure_rows(data.figures.get(key, [])),
            "charts": chart_map[key],
            "missing": key in data.missing,
        }
        for key in data.sections
    ]
    attachments = tuple(
        (f"{name}_{data.period.start}_{data.period.end}.csv", csv_text(table.columns, table.rows))
        for name, table in data.tables.items()
    )
    context = {
        "organization": organization,
        "report_name": report.name,
        "report_title": REPORT_TITLES[report.report_type],
        "period": data.period,
        "timezone": report.parameters.timezone,
        "sections": sections,
        "triangle": _triangle(data),
        "formats": data.formats,
        "attachments": [name for name, _ in attachments],
    }
    return Rendered(
        subject=subject,
        html=_templates.get_template("report.html").render(context),
        text=_templates.get_template("report.txt").render(context),
        charts=tuple(c for key in data.sections for c in chart_map[key]),
        attachments=attachments,
    )


def build_message(
    rendered: Rendered,
    *,
    mail_from: Address,
    recipients: tuple[str, ...],
    message_id: str,
    date: dt.datetime,
) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = rendered.subject
    message["From"] = mail_from
    message["To"] = ", ".join(recipients)
    message["Date"] = format_datetime(date.replace(tzinfo=dt.UTC))
    message["Message-ID"] = message_id
    # RFC 3834: tells vacation responders not to answer a scheduled report.
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    html_part = message.get_payload()[1]
    for chart in rendered.charts:
        filename = chart.title.lower().replace(" ", "_") + ".png"
        html_part.add_related(
            chart.png, maintype="image", subtype="png", cid=f"<{chart.cid}>", filename=filename,
            disposition="inline",
        )
    for filename, text in rendered.attachments:
        message.add_attachment(text, subtype="csv", filename=filename)
    return message
