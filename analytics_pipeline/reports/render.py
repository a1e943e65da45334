"""The report's content, rendered once per delivery: its figures and KPI block, the charts, the
cohort triangle, the HTML and plain-text bodies (templates/), the CSV attachments (above the size
limit, a link to the Dashboard API instead) and, when the report asks for it, the PDF. mime.py
makes each recipient's message of it.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlencode

import jinja2

from ..core.routes import TABLE_ENDPOINTS
from ..core.spreadsheet import safe_cell
from . import charts
from .labels import (
    NOT_APPLICABLE,
    PLAN_TITLE,
    REPORT_TITLES,
    SECTION_TITLES,
    empty_text,
    figure_view,
    format_value,
    plan_note,
    plan_view,
)
from .pdf import pdf_document
from .queries import TREND_DAYS, BrokenReport, Figure, ReportData
from .settings import attachment_max_bytes, dashboard_url
from .validation import CONTROL_CHARACTERS, ReportConfig

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PDF_PAGE = "A4"  # the page size of the PDF attachment

_templates = jinja2.Environment(
    loader=jinja2.PackageLoader("analytics_pipeline.reports", "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def single_line(text: str) -> str:
    """Organisation names come from the platform unchecked; no control character may reach a header."""
    return " ".join(CONTROL_CHARACTERS.sub(" ", text).split())


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
            self.context, image_src=sources, unsubscribe_url=unsubscribe_url, pdf_page=None)

    def text(self, unsubscribe_url: str | None = None) -> str:
        return _templates.get_template("report.txt").render(self.context, unsubscribe_url=unsubscribe_url)

    def pdf_html(self, page: str = PDF_PAGE) -> str:
        """The HTML with the charts embedded, for the PDF: the same content as the email, on
        pages of size `page` (a CSS page size: A4, letter)."""
        sources = {c.cid: "data:image/png;base64," + base64.b64encode(c.png).decode() for c in self.charts}
        return _templates.get_template("report.html").render(
            self.context, image_src=sources, unsubscribe_url=None, pdf_page=page)


CENT = Decimal("0.01")


def plain_decimal(value: Decimal) -> str:
    """A decimal as a spreadsheet reads it: fixed-point, never exponent notation (0E-20), and no
    zeros past the cents (1.00000000000000000000 is 1.00); the digits that count are kept."""
    if not value.is_finite():
        return str(value)
    if value.as_tuple().exponent < -2:
        value = value.normalize()
        if value.as_tuple().exponent > -2:
            value = value.quantize(CENT)
    return format(value, "f")



def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return plain_decimal(value)
    return safe_cell(value)


def csv_text(columns, rows) -> str:
    """A CSV attachment: plain decimals, ISO dates, empty for NULL, text that cannot become a
    formula. Rates are fractions (1 = 100 %) in every report CSV (their SQL makes them so)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(v) for v in row])
    return buffer.getvalue()


def _figure_rows(figures: list[Figure], currency: str, missing: str = "–") -> list[dict]:
    return [figure_view(f.metric, f.unit, f.current, f.previous, f.change_pct, missing=missing, currency=currency)
            for f in figures]


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
        # The trailing 30 days (or the whole period, if longer), the period's days highlighted: a
        # daily report's one day reads against the month before it.
        first = min(data.period.start, data.period.end - dt.timedelta(days=TREND_DAYS - 1))
        by_day = {r["period_start"]: r["total_revenue"] for r in days}
        shown = [first + dt.timedelta(days=i) for i in range((data.period.end - first).days + 1)]
        if any(by_day.get(day) is not None for day in shown):
            more = len(shown) > (data.period.end - data.period.start).days + 1
            title = "Revenue by day, the period highlighted" if more else "Revenue by day"
            out["revenue"].append(chart("Revenue by day", charts.bar_chart,
                f"{title} ({data.currency})", [f"{day:%d %b}" for day in shown], [by_day.get(day) for day in shown],
                highlight=[data.period.start <= day <= data.period.end for day in shown]))
    if "tournaments" in data.sections and data.formats:
        out["tournaments"].append(chart("Tournaments by format", charts.bar_chart,
            "Tournaments created by format", [f for f, _ in data.formats], [n for _, n in data.formats],
            horizontal=True))
    return out


def _plan_table(data: ReportData) -> dict | None:
    """Revenue by plan, as the email, its plain text and the PDF show it; None for a report
    without it."""
    if data.plans is None:
        return None
    rows = []
    for row in data.plans.rows:
        view = plan_view(row, data.currency)
        view["label"] = single_line(view["label"]) or "(none)"  # plan ids come from the events unchecked
        rows.append(view)
    return {
        "title": PLAN_TITLE,
        "note": plan_note(data.plans.top, data.plans.rows),
        "rows": rows,
        "missing": not rows,
        "pending": data.plans.pending,
        "empty_text": None if rows else empty_text("plans", data.plans.pending),
    }


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
                "ltv": format_value(entry["ltv"], "amount", currency=data.currency),
                "cells": [
                    None if m not in entry["cells"] else
                    {"text": f"{entry['cells'][m] * 100:.0f}", "shade": _shade(entry["cells"][m])}
                    for m in range(months)
                ],
            }
            for month, entry in sorted(by_cohort.items())
        ],
    }


def _shade(rate: Decimal) -> str:
    # White to the charts' blue: a rate (a fraction) of 1 is the full colour.
    t = max(0.0, min(1.0, float(rate)))
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
    return f"{TABLE_ENDPOINTS[name]}?{urlencode(query)}"


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
            "figures": _figure_rows(data.figures.get(section, []), data.currency),
            "charts": chart_map[section],
            "missing": section in data.missing,
            "pending": section in data.pending,
            "empty_text": empty_text(section, section in data.pending),
            "kpis": _figure_rows(data.kpis, data.currency, NOT_APPLICABLE) if section == "revenue" else [],
            "kpi_title": _kpi_title(data) if section == "revenue" else None,
            "plans": _plan_table(data) if section == "revenue" else None,
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
        # Every table has amounts: the currency they are in is a column of each row.
        content = csv_text((*table.columns, "currency"), [(*row, data.currency) for row in table.rows]).encode()
        if len(content) > limit:
            # A table the Dashboard API does not serve is named without a link.
            url = dashboard_url(required=True) + csv_url(name, data) if name in TABLE_ENDPOINTS else None
            left_out.append(LeftOut(filename, _size(len(content)), url, name))
        else:
            attachments.append(Attachment(filename, content, "text", "csv"))
    context = {
        "organization": organization,
        "report_name": report.name,
        "report_title": REPORT_TITLES[report.report_type],
        "period": data.period,
        "timezone": report.parameters.timezone,
        "currency": data.currency,
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
