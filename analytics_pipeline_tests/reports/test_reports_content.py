"""What a recipient reads at a glance: changes coloured by the metric's polarity (a rise of churn or
refunds is bad news) in the figures and the KPI block, in every channel; rate changes in
percentage points; the tenant's currency beside every amount; plain CSVs with rates as fractions;
and a section without rows that says whether nothing happened or nothing is computed yet.

The aggregate rows are inserted by hand; the expected numbers are worked out in the comments.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from decimal import Decimal
from html.parser import HTMLParser

import pytest
import sqlalchemy as sa

from analytics_pipeline.reports.delivery import deliver_scheduled

from .support import NOW, add_org, add_report, add_revenue, add_tournaments
from .test_reports_channels import add_channel, receiver  # noqa: F401

pytestmark = pytest.mark.usefixtures("delivery_settings")

GREEN, RED, GREY = "#15803d", "#b91c1c", "#64748b"


class Rows(HTMLParser):
    """The HTML's table rows: per row, its cells as (attributes, text)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[tuple[dict, str]]] = []
        self._cell: tuple[dict, list[str]] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th") and self.rows:
            self._cell = (dict(attrs), [])

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append((self._cell[0], "".join(self._cell[1]).strip()))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[1].append(data)


def figure_rows(html: str) -> dict[str, tuple[str, str, str, dict]]:
    """{label: (this period, previous, change, the change cell's attributes)} of the figure tables."""
    parser = Rows()
    parser.feed(html)
    return {cells[0][1]: (cells[1][1], cells[2][1], cells[3][1], cells[3][0])
            for cells in parser.rows if len(cells) == 4 and cells[0][1] not in ("Figure", "KPI")}


def _customers(conn, start, active, new, churned):
    conn.execute(sa.text("UPDATE revenue_aggregates SET active_customers = :a, new_customers = :n, "
                         "churned_customers = :c WHERE tenant_id = 'org-a' AND period_start = :s"),
                 {"a": active, "n": new, "c": churned, "s": start})


@pytest.fixture
def churning(engine):
    """org-a bills in EUR. Week 45 against week 44 (the weekly report due 10 Nov 2025):
    MRR 10,000 -> 11,000 (+10.0 %, good); churned MRR 400 -> 570 (+42.5 %, bad); churned customers
    4 -> 5 (+25.0 %, bad); refunds 1 -> 3 (+200.0 %, bad); refunded 50 -> 120 (+140.0 %, bad).
    KPIs: opening customers 40 = 41 − (6 − 5) and 38 = 40 − (6 − 4): logo churn 5/40 = 12.5 %
    against 4/38 = 10.53 %, +2.0 pp (bad). Opening MRR 10,000 = 11,000 − (1,570 − 570) and
    9,000 = 10,000 − (1,400 − 400): gross MRR churn 570/10,000 = 5.7 % against 400/9,000 = 4.44 %,
    +1.3 pp (bad)."""
    with engine.begin() as conn:
        add_org(conn, "org-a", "Acme Esports")
        conn.execute(sa.text("INSERT INTO organization_settings (organization_id, currency) VALUES ('org-a', 'EUR')"))
        # mrr, arr, new, expansion, contraction, reactivation, churned, revenue, payments, successful,
        # refunds, refunded
        add_revenue(conn, "org-a", "week", "2025-11-03", "2025-11-09",
                    11000, 132000, 1570, 0, 0, 0, 570, 9000, 30, 30, 3, 120)
        add_revenue(conn, "org-a", "week", "2025-10-27", "2025-11-02",
                    10000, 120000, 1400, 0, 0, 0, 400, 8000, 30, 30, 1, 50)
        _customers(conn, "2025-11-03", 41, 6, 5)
        _customers(conn, "2025-10-27", 40, 6, 4)
        for i in range(7):
            day = dt.date(2025, 11, 3) + dt.timedelta(days=i)
            add_revenue(conn, "org-a", "day", day, day, 11000, 132000, 0, 0, 0, 0, 0, 1000 + i, 4, 4, 0, 0)
        # Completion 8 of 10 against 3 of 4: 80.0 % against 75.0 %, +5.0 pp (good), not +6.7 %.
        add_tournaments(conn, "org-a", "2025-11-03", "2025-11-09", 10, 8, 80, 40, 4, 50, "swiss", 500)
        add_tournaments(conn, "org-a", "2025-10-27", "2025-11-02", 4, 3, 75, 16, 4, 80, "swiss", 100)
    return engine


def test_rising_churn_and_refunds_are_marked_bad_in_every_channel(churning, database, mail, inbox, receiver):  # noqa: F811
    with churning.begin() as conn:
        add_report(conn, "r1", recipients=["ann@example.com"], report_type="comprehensive")
        add_channel(conn, "ch_hook", "r1", receiver.url)
        add_channel(conn, "ch_slack", "r1", receiver.url, kind="slack", secret=None)
    outcome = deliver_scheduled(database, mail, "r1", now=NOW)
    assert outcome.status == "sent", outcome.detail
    [message] = inbox.messages()
    html = message.get_body(("html",)).get_content()
    plain = message.get_body(("plain",)).get_content()
    rows = figure_rows(html)

    expected = {
        # label: (current, previous, change, colour)
        "MRR (end of period)": ("11,000.00 EUR", "10,000.00 EUR", "▲\xa0+10.0 %", GREEN),
        "Churned MRR": ("570.00 EUR", "400.00 EUR", "▲\xa0+42.5 %", RED),
        "Churned customers": ("5", "4", "▲\xa0+25.0 %", RED),
        "Refunds": ("3", "1", "▲\xa0+200.0 %", RED),
        "Refunded amount": ("120.00 EUR", "50.00 EUR", "▲\xa0+140.0 %", RED),
        "Logo churn rate": ("12.5 %", "10.5 %", "▲\xa0+2.0 pp", RED),
        "Gross MRR churn rate": ("5.7 %", "4.4 %", "▲\xa0+1.3 pp", RED),
        "Completion rate": ("80.0 %", "75.0 %", "▲\xa0+5.0 pp", GREEN),
        "Average duration (minutes)": ("50.0", "80.0", "▼\xa0-37.5 %", GREY),  # neither better nor worse
    }
    for label, (current, previous, change, colour) in expected.items():
        got_current, got_previous, got_change, attributes = rows[label]
        assert (got_current, got_previous, got_change) == (current, previous, change), label
        assert f"color:{colour}" in attributes["style"], label
    assert "amounts in EUR" in html and "amounts in EUR" in plain

    # The plain text says it in words.
    assert re.search(r"Churned MRR +570\.00 EUR +previous 400\.00 EUR, change ▲ \+42\.5 % \(worse\)", plain)
    assert re.search(r"Refunds +3 +previous 1, change ▲ \+200\.0 % \(worse\)", plain)
    assert re.search(r"Logo churn rate +12\.5 % +previous 10\.5 %, change ▲ \+2\.0 pp \(worse\)", plain)
    assert re.search(r"MRR \(end of period\) +11,000\.00 EUR +previous 10,000\.00 EUR, change ▲ \+10\.0 % \(better\)", plain)

    # The CSVs name the currency of their amounts.
    for attachment in message.iter_attachments():
        if attachment.get_filename().endswith(".csv"):
            assert {r["currency"] for r in csv.DictReader(io.StringIO(attachment.get_content()))} == {"EUR"}

    bodies = {headers.get("x-report-signature") is None: json.loads(body) for headers, body in receiver.requests}
    hook, slack = bodies[False], bodies[True]
    assert hook["currency"] == "EUR"
    figures = {f["metric"]: f for f in hook["sections"]["revenue"]["figures"] + hook["sections"]["revenue"]["kpis"]}
    assert {m: (figures[m]["polarity"], figures[m]["tone"]) for m in
            ("churned_revenue", "refund_count", "refund_amount", "churned_customers", "logo_churn_rate", "mrr")} == {
        "churned_revenue": ("lower_is_better", "bad"), "refund_count": ("lower_is_better", "bad"),
        "refund_amount": ("lower_is_better", "bad"), "churned_customers": ("lower_is_better", "bad"),
        "logo_churn_rate": ("lower_is_better", "bad"), "mrr": ("higher_is_better", "good")}
    [completion] = [f for f in hook["sections"]["tournaments"]["figures"] if f["metric"] == "completion_rate"]
    assert (Decimal(completion["current"]), Decimal(completion["change_pct"]), completion["change_unit"]) == (
        Decimal("0.8"), Decimal("5.0"), "pp")
    text = json.dumps(slack["blocks"], ensure_ascii=False)
    assert "Churned MRR: *570.00 EUR* (previous 400.00 EUR, ▲ +42.5 % :red_circle: worse)" in text
    assert "Refunded amount: *120.00 EUR* (previous 50.00 EUR, ▲ +140.0 % :red_circle: worse)" in text


def test_a_tenant_without_activity_is_told_so_and_not_that_nothing_is_computed(engine, database, mail, inbox):
    """org-a has no rows at all; the aggregates ran after the period (9 Nov) ended, so there was no
    activity. Before they ran, the same report says the figures are not computed yet."""
    with engine.begin() as conn:
        add_org(conn, "org-a", "Acme Esports")
        add_report(conn, "r1", recipients=["ann@example.com"])
    assert deliver_scheduled(database, mail, "r1", now=NOW).status == "sent"
    plain = inbox.messages()[0].get_body(("plain",)).get_content()
    for noun in ("revenue", "user", "tournament"):
        assert f"No {noun} figures have been computed for this period yet." in plain
        assert f"No {noun} activity" not in plain

    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO aggregate_freshness (aggregate, materialized_at) VALUES "
                             "('revenue_aggregates', '2025-11-10 00:00'), ('user_cohorts', '2025-11-10 03:00'), "
                             "('tournament_aggregates', '2025-11-09 23:59')"))
        add_report(conn, "r2", recipients=["bob@example.org"])
    assert deliver_scheduled(database, mail, "r2", now=NOW).status == "sent"
    plain = inbox.messages()[1].get_body(("plain",)).get_content()
    assert "No revenue activity in this period" in plain
    assert "No user activity in this period" in plain
    assert "No revenue figures have been computed" not in plain
    # The tournaments last ran a minute before the period's last day ended: not computed yet.
    assert "No tournament figures have been computed for this period yet." in plain


def _bar_runs(png: bytes) -> list[tuple[str, int]]:
    """The colours of the bars along the pixel row that crosses the most of them, left to right:
    each run of the accent (highlighted) or the muted colour, with the x where it ends."""
    from PIL import Image

    from analytics_pipeline.reports.charts import ACCENT, MUTED

    image = Image.open(io.BytesIO(png)).convert("RGB")
    colours = {tuple(int(c[i:i + 2], 16) for i in (1, 3, 5)): name for c, name in ((ACCENT, "accent"), (MUTED, "muted"))}
    best: list[tuple[str, int]] = []
    for y in range(image.height - 1, image.height // 2, -1):  # the lowest row that crosses every bar
        runs: list[tuple[str, int]] = []
        for x in range(image.width):
            name = colours.get(image.getpixel((x, y)))
            if name is None:
                continue
            if runs and runs[-1][0] == name and runs[-1][1] == x - 1:
                runs[-1] = (name, x)
            else:
                runs.append((name, x))
        if len(runs) > len(best):
            best = runs
    return best


def test_a_daily_report_charts_the_trailing_30_days_with_its_day_highlighted(engine, database, mail, inbox):
    """A daily report due 10 Nov 2025 covers 9 Nov; the chart shows 11 Oct to 9 Nov, 30 bars, of
    which the last, 9 Nov, in the accent colour and the 29 before it muted."""
    with engine.begin() as conn:
        add_org(conn, "org-a", "Acme Esports")
        for i in range(30):
            day = dt.date(2025, 10, 11) + dt.timedelta(days=i)
            add_revenue(conn, "org-a", "day", day, day, 1000, 12000, 0, 0, 0, 0, 0, 500 + 10 * i, 1, 1, 0, 0)
        add_report(conn, "r1", frequency="daily", report_type="revenue_summary", recipients=["ann@example.com"])
    assert deliver_scheduled(database, mail, "r1", now=NOW).status == "sent"
    [message] = inbox.messages()
    [chart] = [p for p in message.walk() if p.get_filename() == "revenue_by_day.png"]
    runs = _bar_runs(chart.get_content())
    assert [name for name, _ in runs] == ["muted"] * 29 + ["accent"]
