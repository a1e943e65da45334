"""The PDF attachment is laid out like the email: on A4 and on Letter each figure's label, value,
previous value and change stay in their columns, apart (pypdf's text positions), and a name in
Japanese with an emoji is set in fonts that have those characters (docs/reports.md#fonts-of-the-pdf)."""

from __future__ import annotations

import io

import pypdf
import pytest

from analytics_pipeline.reports.pdf import pdf_document
from analytics_pipeline.reports.queries import read_report
from analytics_pipeline.reports.render import render
from analytics_pipeline.reports.schedule import report_period
from analytics_pipeline.reports.validation import validate_report

from .support import DUE, RECIPIENTS

pytestmark = pytest.mark.usefixtures("delivery_settings")

NAME = "Weekly KPIs 週報 📈"
PAGES = {"A4": (595.28, 841.89), "letter": (612.0, 792.0)}  # in points
# Figures of the `tenants` fixture (conftest.py), week 45 against week 44, as worked out there.
ROWS = {
    "MRR (end of period)": ("12,500.00 USD", "10,000.00 USD", "▲ +25.0 %"),
    "Churned MRR": ("800.00 USD", "500.00 USD", "▲ +60.0 %"),  # 500 -> 800: +60.0 %
    "Payments": ("40", "20", "▲ +100.0 %"),
    "Refunds": ("2", "0", "▲ –"),
    "Completion rate": ("80.0 %", "100.0 %", "▼ -20.0 pp"),
}


def _pdf(tenants, database, page: str) -> pypdf.PdfReader:
    report = validate_report(name=NAME, report_type="comprehensive", frequency="weekly", recipients=RECIPIENTS,
                             parameters={})
    period = report_period(DUE, "weekly", report.parameters)
    with database.tenant_transaction("org-a") as conn:
        data = read_report(conn, "org-a", "Acme Esports 株式会社", report, period)
    rendered = render(data, report, "example.com", "k1")
    return pypdf.PdfReader(io.BytesIO(pdf_document(rendered.pdf_html(page))))


def _runs(page) -> list[tuple[float, float, str]]:
    """Each text run of the page: x and y of where it starts, in points, and its text."""
    runs = []

    def visit(text, cm, tm, font, size):
        if text.strip():
            runs.append((tm[4] * cm[0] + tm[5] * cm[2] + cm[4], tm[4] * cm[1] + tm[5] * cm[3] + cm[5], text))

    page.extract_text(visitor_text=visit)
    return runs


def _at_most_wide(text: str) -> float:
    """More than the text's width in points at the tables' 13 px (9.75 pt): 0.7 em a character,
    where digits, separators and the capitals of a currency code average under 0.6 em."""
    return len(text) * 0.7 * 9.75


@pytest.mark.parametrize("size", PAGES)
def test_the_tables_hold_their_columns_on_a4_and_letter(tenants, database, size):
    document = _pdf(tenants, database, size)
    first = document.pages[0]
    assert (round(float(first.mediabox.width), 2), round(float(first.mediabox.height), 2)) == PAGES[size]
    width = float(first.mediabox.width)
    runs = [(page_number, *run) for page_number, page in enumerate(document.pages) for run in _runs(page)]
    label_x = set()
    for label, expected in ROWS.items():
        [(page_number, x, y, _)] = [r for r in runs if r[3].strip() == label]
        label_x.add(round(x, 1))
        # The row's other runs, by where they start: pypdf splits a cell's text into runs that
        # start at the cell's x.
        cells: dict[float, str] = {}
        for number, rx, ry, text in runs:
            if number == page_number and abs(ry - y) < 1 and rx > x + 1:
                cells[round(rx, 1)] = cells.get(round(rx, 1), "") + text
        starts = sorted(cells)
        assert [" ".join(cells[start].split()) for start in starts] == list(expected), label
        # Label, this period, previous, change: each ends before the next starts, the last on the page.
        edges = [(x, label), *((start, cells[start].strip()) for start in starts)]
        for (left, text), (right, _) in zip(edges, edges[1:]):
            assert left + _at_most_wide(text) < right, (label, text, left, right)
        assert starts[-1] + _at_most_wide(cells[starts[-1]].strip()) < width, label
    assert len(label_x) == 1  # every label starts at the same x: left-aligned


def test_a_name_in_japanese_with_an_emoji_is_set_in_fonts_that_have_it(tenants, database):
    document = _pdf(tenants, database, "A4")
    page = document.pages[0]
    text = page.extract_text()
    assert NAME in text and "株式会社" in text
    fonts = {font.get_object()["/BaseFont"].split("+")[-1] for font in page["/Resources"]["/Font"].values()}
    assert any(font.startswith("Noto-Sans-CJK") for font in fonts), fonts
    assert any(font.startswith("Noto-Color-Emoji") for font in fonts), fonts
