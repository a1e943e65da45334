"""The report email on a phone: Debian's chromium, driven by Playwright, lays the HTML out 375 px
wide. No figure wraps onto a second line or spills out of its cell, and nothing needs a
horizontal scroll."""

from __future__ import annotations

import base64
import os
import shutil

import pytest

from analytics_pipeline.reports.queries import read_report
from analytics_pipeline.reports.render import render
from analytics_pipeline.reports.schedule import report_period
from analytics_pipeline.reports.validation import validate_report

from .support import DUE, RECIPIENTS

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]

pytestmark = [
    pytest.mark.usefixtures("delivery_settings"),
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="chromium is not installed (.ci/run installs it)"),
]

# Per figure cell (this period, previous, change) of every figure table (revenue by plan too),
# and the cohort and plan tables:
# the text's line boxes (one top when it is on one line), whether it spills out of its cell, and
# the page's scroll width.
MEASURE = """() => {
  const cells = [...document.querySelectorAll("table.figures tr")].slice(0).flatMap(
    (row) => [...row.querySelectorAll("td")].slice(1));
  const lines = cells.map((cell) => {
    const range = document.createRange();
    range.selectNodeContents(cell);
    const tops = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
    return {text: cell.textContent.trim(), lines: tops.size, spills: cell.scrollWidth > cell.clientWidth + 1};
  });
  const cohorts = document.querySelector("table.cohorts").getBoundingClientRect();
  const plans = document.querySelector("table.plans").getBoundingClientRect();
  return {lines, scrollWidth: document.documentElement.scrollWidth, cohortsRight: cohorts.right,
          plansRight: plans.right};
}"""


@pytest.fixture
def report_html(tenants, database) -> str:
    """The comprehensive report of the `tenants` fixture as its email's HTML, the charts inline."""
    report = validate_report(name="Weekly KPIs", report_type="comprehensive", frequency="weekly",
                             recipients=RECIPIENTS, parameters={})
    period = report_period(DUE, "weekly", report.parameters)
    with database.tenant_transaction("org-a") as conn:
        data = read_report(conn, "org-a", "Acme Esports", report, period)
    rendered = render(data, report, "example.com", "k1")
    html = rendered.html(unsubscribe_url="https://analytics.example.com/v1/unsubscribe?token=t")
    for chart in rendered.charts:
        html = html.replace(f"cid:{chart.cid}", "data:image/png;base64," + base64.b64encode(chart.png).decode())
    return html


@pytest.mark.slow
def test_at_375_px_no_figure_wraps_or_spills_and_nothing_scrolls_sideways(report_html):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = chromium.new_page(viewport={"width": 375, "height": 800})
            page.set_content(report_html)
            measured = page.evaluate(MEASURE)
        finally:
            chromium.close()
    cells = measured["lines"]
    assert len(cells) >= 3 * 24  # the revenue figures, the KPIs, the plans and the tournament figures
    assert "▲\xa0+25.0 %" in {c["text"] for c in cells}  # MRR's change, arrow and all, in one cell
    # Revenue by plan (conftest.py): its MRR and changes are measured like the figures, and the
    # plan with a long id wraps inside its cell without widening the page.
    assert {"8,400.00 USD", "▼\xa0-22.5 %", "12,500.00 USD"} <= {c["text"] for c in cells}
    assert measured["plansRight"] <= 375
    wrapped = [c["text"] for c in cells if c["lines"] != 1 or c["spills"]]
    assert wrapped == []
    assert measured["scrollWidth"] <= 375
    assert measured["cohortsRight"] <= 375
