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

import base64
import csv
import email.policy
import datetime as dt
import io
import uuid
from dataclasses import dataclass
from decimal import Decimal
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from urllib.parse import urlencode

import jinja2

from . import charts
from .queries import BrokenReport, Figure, ReportData
from .settings import attachment_max_bytes, dashboard_url
from .validation import CONTROL_CHARACTERS, ReportConfig

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HEADER_POLICY = email.policy.default.clone(max_line_length=998)

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
    "active_customers": "Paying customers (end of period)",
    "new_customers": "New customers",
    "reactivated_customers": "Reactivated customers",
    "churned_customers": "Churned customers",
    "signups": "Signups",
    "tournament_count": "Tournaments",
    "completed_count": "Completed tournaments",
    "completion_rate": "Completion rate",
    "total_players": "Player registrations",
    "avg_players": "Players per tournament",
    "avg_duration_minutes": "Average duration (minutes)",
    "revenue": "Tournament revenue",
    # The KPI block (docs/metrics.md#kpis).
    "arpa": "ARPA (MRR per paying customer)",
    "logo_churn_rate": "Logo churn rate",
    "gross_mrr_churn_rate": "Gross MRR churn rate",
    "net_mrr_churn_rate": "Net MRR churn rate",
    "grr": "Gross revenue retention (GRR)",
    "nrr": "Net revenue retention (NRR)",
    "quick_ratio": "Quick ratio",
    "ttm_nrr": "NRR, trailing twelve months",
    "ttm_grr": "GRR, trailing twelve months",
}
# A KPI without a value has a denominator of 0 (or no row): not applicable, never 0.
NOT_APPLICABLE = "n/a"

_templates = jinja2.Environment(
    loader=jinja2.PackageLoader("analytics_pipeline.reports", "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def delivery_key(report_id: str, scheduled_for: dt.datetime) -> str:
    return str(uuid.uuid5(MESSAGE_ID_NAMESPACE, f"{report_id}\n{scheduled_for.isoformat()}"))


def message_id_for(report_id: str, scheduled_for: dt.datetime, domain: str, recipient: str) -> str:
    """Each recipient gets a message of their own (their own unsubscribe link), so the Message-ID
    names the recipient too."""
    token = uuid.uuid5(MESSAGE_ID_NAMESPACE, f"{report_id}\n{scheduled_for.isoformat()}\n{recipient.casefold()}")
    return f"<report.{token}@{domain}>"


def single_line(text: str) -> str:
    """Organisation names come from the platform unchecked; no control character may reach a header."""
    return " ".join(CONTROL_CHARACTERS.sub(" ", text).split())


def format_value(value, unit: str, missing: str = "–") -> str:
    if value is None:
        return missing
    if unit == "count":
        return f"{int(value):,}"
    if unit == "percent":
        return f"{Decimal(value):,.1f} %"
    if unit == "ratio":
        return f"{Decimal(value) * 100:,.1f} %"
    if unit == "number":
        return f"{Decimal(value):,.1f}"
    return f"{Decimal(value):,.2f}"


def format_change(change: Decimal | None, unit: str = "") -> str:
    """A change in percent; of a ratio, in percentage points."""
    if change is None:
        return "–"
    return f"{'+' if change > 0 else ''}{change:,.1f} {'pp' if unit == 'ratio' else '%'}"


@dataclass(frozen=True)
class Chart:
    cid: str
    title: str
    png: bytes


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    maintype: str
    subtype: str


@dataclass(frozen=True)
class LeftOut:
    """An attachment above the size limit: named in the email, with where to get it instead."""

    filename: str
    size: str
    url: str | None  # the Dashboard API's CSV endpoint; None for the PDF (its content is the email)
    table: str | None = None  # the aggregate table whose rows it holds


@dataclass(frozen=True)
class Rendered:
    """A report rendered once per delivery; each recipient's message differs only in the
    unsubscribe link, so the templates are filled per recipient from `context`."""

    subject: str
    context: dict
    charts: tuple[Chart, ...]
    attachments: tuple[Attachment, ...]

    def html(self, unsubscribe_url: str | None = None) -> str:
        sources = {c.cid: f"cid:{c.cid}" for c in self.charts}
        return _templates.get_template("report.html").render(
            self.context, image_src=sources, unsubscribe_url=unsubscribe_url)

    def text(self, unsubscribe_url: str | None = None) -> str:
        return _templates.get_template("report.txt").render(self.context, unsubscribe_url=unsubscribe_url)

    def pdf_html(self) -> str:
        """The HTML with the charts embedded, for the PDF: the same content as the email."""
        sources = {c.cid: "data:image/png;base64," + base64.b64encode(c.png).decode() for c in self.charts}
        return _templates.get_template("report.html").render(
            self.context, image_src=sources, unsubscribe_url=None)


def csv_text(columns, rows) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if v is None else v.isoformat() if isinstance(v, dt.date) else v for v in row])
    return buffer.getvalue()


def _figure_rows(figures: list[Figure], missing: str = "–") -> list[dict]:
    return [
        {
            "label": METRIC_LABELS.get(f.metric, f.metric),
            "current": format_value(f.current, f.unit, missing),
            "previous": format_value(f.previous, f.unit, missing),
            "change": format_change(f.change_pct, f.unit),
            "direction": "flat" if not f.change_pct else ("up" if f.change_pct > 0 else "down"),
        }
        for f in figures
    ]


def _kpi_title(data: ReportData) -> str | None:
    if not data.kpis:
        return None
    if data.kpi_period is None:
        return "KPIs"
    start, end = data.kpi_period
    if start == end:
        return f"KPIs of {start:%a} {start.day} {start:%b %Y}"
    return f"KPIs of the {data.period.period_type} {start.day} {start:%b} – {end.day} {end:%b %Y}"


def _charts(data: ReportData, key: str, domain: str) -> dict[str, list[Chart]]:
    """The charts each section shows. A chart that cannot be drawn stops the report: it is never
    sent with the chart missing."""
    drawn = iter(range(1, 100))

    def chart(title: str, draw, *args, **kwargs) -> Chart:
        try:
            png = draw(*args, **kwargs)
        except Exception as exc:
            raise BrokenReport(f"chart {title!r} could not be drawn: {type(exc).__name__}: {exc}") from exc
        if not isinstance(png, bytes) or not png.startswith(PNG_SIGNATURE):
            raise BrokenReport(f"chart {title!r} did not come out as a PNG image")
        # Content-IDs follow from the delivery, so a preview and the message sent are the same.
        return Chart(f"chart{next(drawn)}.{key}@{domain}", title, png)

    out: dict[str, list[Chart]] = {s: [] for s in data.sections}
    if "revenue" in data.sections:
        days = [r for r in data.tables["revenue_aggregates"].records() if r["period_type"] == "day"]
        if days:
            out["revenue"].append(chart("MRR trend", charts.line_chart,
                "MRR trend (daily)", [f"{r['period_start']:%d %b}" for r in days], [r["mrr"] for r in days]))
        in_period = [r for r in days if data.period.start <= r["period_start"] <= data.period.end]
        if in_period:
            out["revenue"].append(chart("Revenue by day", charts.bar_chart,
                "Revenue by day", [f"{r['period_start']:%d %b}" for r in in_period],
                [r["total_revenue"] for r in in_period]))
    if "users" in data.sections:
        rows = data.tables["user_cohorts"].records()
        if rows:
            cohorts = sorted({f"{r['cohort_month']:%Y-%m}" for r in rows})
            months = max(r["month_number"] for r in rows) + 1
            rates = {(f"{r['cohort_month']:%Y-%m}", r["month_number"]): r["retention_rate"] for r in rows}
            out["users"].append(chart("Retention by cohort", charts.heat_table,
                "Retention by signup cohort (% of cohort active)", cohorts, months, rates))
    if "tournaments" in data.sections and data.formats:
        out["tournaments"].append(chart("Tournaments by format", charts.bar_chart,
            "Tournaments created by format", [f for f, _ in data.formats], [n for _, n in data.formats],
            horizontal=True))
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


def _size(n: int) -> str:
    return f"{n / 1_000_000:,.1f} MB" if n >= 100_000 else f"{n / 1000:,.0f} kB"


def csv_url(name: str, data: ReportData) -> str:
    """The Dashboard API request that returns the rows of table `name` as CSV (docs/operations.md,
    Attachment size): the report's period and the one before; the cohorts the report shows."""
    period = data.period
    if name == "user_cohorts":
        months = [r["cohort_month"] for r in data.tables[name].records()] or [period.end]
        query = {"format": "csv", "from": f"{min(months):%Y-%m}", "to": f"{period.end:%Y-%m}"}
    else:
        query = {"format": "csv", "period_type": period.period_type,
                 "from": period.previous_start.isoformat(), "to": period.end.isoformat()}
    path = {"revenue_aggregates": "/v1/revenue", "tournament_aggregates": "/v1/tournaments",
            "user_cohorts": "/v1/cohorts"}[name]
    return f"{path}?{urlencode(query)}"


def render(data: ReportData, report: ReportConfig, domain: str, key: str, *, pdf: bool = False) -> Rendered:
    """The report's content. `key` names the delivery (it makes the charts' Content-IDs).

    Tables with no rows are not attached (the email says so); an attachment above
    REPORT_ATTACHMENT_MAX_BYTES is replaced by a note linking the Dashboard API's CSV endpoint,
    which needs DASHBOARD_URL (a ConfigError without it: the report is not sent without it).
    """
    organization = single_line(data.organization)
    subject = f"{organization}: {report.name} – {data.period.label}"
    chart_map = _charts(data, key, domain)
    sections = [
        {
            "key": section,
            "title": SECTION_TITLES[section],
            "figures": _figure_rows(data.figures.get(section, [])),
            "charts": chart_map[section],
            "missing": section in data.missing,
            "kpis": _figure_rows(data.kpis, NOT_APPLICABLE) if section == "revenue" else [],
            "kpi_title": _kpi_title(data) if section == "revenue" else None,
        }
        for section in data.sections
    ]
    limit = attachment_max_bytes()
    attachments: list[Attachment] = []
    left_out: list[LeftOut] = []
    empty: list[str] = []
    for name, table in data.tables.items():
        if not table.rows:
            empty.append(name)
            continue
        filename = f"{name}_{data.period.start}_{data.period.end}.csv"
        content = csv_text(table.columns, table.rows).encode()
        if len(content) > limit:
            url = dashboard_url(required=True) + csv_url(name, data)
            left_out.append(LeftOut(filename, _size(len(content)), url, name))
        else:
            attachments.append(Attachment(filename, content, "text", "csv"))
    context = {
        "organization": organization,
        "report_name": report.name,
        "report_title": REPORT_TITLES[report.report_type],
        "period": data.period,
        "timezone": report.parameters.timezone,
        "sections": sections,
        "triangle": _triangle(data),
        "formats": data.formats,
        "attachments": [a.filename for a in attachments],
        "left_out": left_out,
        "limit": _size(limit),
        "empty_tables": empty,
        "pdf": None,
    }
    charts_drawn = tuple(c for section in data.sections for c in chart_map[section])
    rendered = Rendered(subject, context, charts_drawn, tuple(attachments))
    if pdf:
        filename = f"report_{data.period.start}_{data.period.end}.pdf"
        document = pdf_document(rendered.pdf_html())
        if len(document) > limit:
            left_out.append(LeftOut(filename, _size(len(document)), None))
        else:
            attachments.append(Attachment(filename, document, "application", "pdf"))
            context["pdf"] = filename
        context["attachments"] = [a.filename for a in attachments if a.subtype == "csv"]
        rendered = Rendered(subject, context, charts_drawn, tuple(attachments))
    return rendered


def pdf_document(html: str) -> bytes:
    """The report as PDF, by WeasyPrint (HTML and CSS layout through Pango; charts are the same
    PNGs). Imported here: it loads the system's Pango, which only reports with a PDF need."""
    try:
        import weasyprint
    except OSError as exc:  # the library is there, the system's Pango is not
        raise BrokenReport(f"the PDF cannot be made: WeasyPrint needs the system's Pango ({exc})") from exc
    try:
        return weasyprint.HTML(string=html).write_pdf()
    except Exception as exc:
        raise BrokenReport(f"the PDF could not be made: {type(exc).__name__}: {exc}") from exc


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
