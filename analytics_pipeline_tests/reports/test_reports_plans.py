"""The comprehensive report's revenue by plan (docs/reports.md#revenue-by-plan), against real
PostgreSQL and SMTP on loopback: the hand-worked figures of a plan upgrade (rows inserted by hand,
and rows the pipeline computes from events), the ten plans of the largest MRR and one row summing
the others, which with them adds up to revenue_aggregates' MRR, in the email, its plain text, the
PDF, the CSV and the webhook's JSON; nothing of another tenant; and the report's words for a table
not computed yet and for no activity.

The expected figures are worked out in the comments.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import pypdf
import pytest
import sqlalchemy as sa

from analytics_pipeline.reports.channels import payload, slack_message
from analytics_pipeline.reports.delivery import deliver_scheduled
from analytics_pipeline.reports.queries import TOP_PLANS, last_period_start, read_report
from analytics_pipeline.reports.render import render
from analytics_pipeline.reports.schedule import report_period
from analytics_pipeline.reports.validation import validate_report
from analytics_pipeline.revenue.assets import (
    customer_sources,
    payment_history,
    revenue_aggregates,
    subscription_history,
)
from analytics_pipeline.revenue.segments import revenue_segments

from ..helpers import add_event, materialize_range
from .conftest import LONG_PLAN
from .support import DUE, NOW, RECIPIENTS, add_org, add_plan, add_report, add_revenue
from .test_reports_content import GREEN, GREY, RED, figure_rows

pytestmark = pytest.mark.usefixtures("delivery_settings")

WEEK_44 = ("2025-10-27", "2025-11-02")
WEEK_45 = ("2025-11-03", "2025-11-09")
ADDONS = [f"addon-{k:02}" for k in range(1, 11)]  # addon-k has MRR 10·k in both weeks


@pytest.fixture
def plans(engine):
    """org-a bills in EUR and has twelve plans; week 45 against week 44 (the weekly report due 10 Nov 2025).

    Week 44: pro 3,000 (10 customers), starter 1,000 (10), addon-k 10·k (1 each): MRR 4,550, 30 customers.
    Week 45:
    - a starter customer of 100 upgrades to pro at 300: starter transfers 100 out, pro 100 in and
      200 of expansion (docs/metrics.md#segment-movements); a new pro customer brings 500;
      pro = 3,000 + 500 + 200 + 100 = 3,800, +26.7 % (800 / 3,000), customers 10 + 1 new + 1 in = 12;
    - starter loses a customer of 100 (churned) and 50 of contraction:
      starter = 1,000 − 100 − 50 − 100 = 750, −25.0 %, customers 10 − 1 churned − 1 out = 8;
    - the addons do not move (0.0 %).
    By MRR: pro 3,800, starter 750, addon-10 .. addon-03 (100 .. 30): the ten shown. The other two,
    addon-02 and addon-01, sum to 30 (previous 30, 0.0 %) and 2 customers.
    All plans: 3,800 + 750 + 550 = 5,100 against 4,550, +12.1 % (550 / 4,550 = 12.09 %); 30 customers.
    revenue_aggregates has the same tenant totals. org-b has a plan of its own and one named like
    org-a's, with conspicuous amounts."""
    with engine.begin() as conn:
        add_org(conn, "org-a", "Acme Esports")
        add_org(conn, "org-b", "Bravo Gaming")
        conn.execute(sa.text("INSERT INTO organization_settings (organization_id, currency) VALUES ('org-a', 'EUR')"))
        # mrr, arr, new, expansion, contraction, reactivation, churned, revenue, payments, successes, refunds, refunded
        add_revenue(conn, "org-a", "week", *WEEK_44, 4550, 54600, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        add_revenue(conn, "org-a", "week", *WEEK_45, 5100, 61200, 500, 200, 50, 0, 100, 0, 0, 0, 0, 0)
        conn.execute(sa.text("UPDATE revenue_aggregates SET active_customers = 30 WHERE tenant_id = 'org-a'"))
        conn.execute(sa.text("UPDATE revenue_aggregates SET new_customers = 1, churned_customers = 1 "
                             "WHERE tenant_id = 'org-a' AND period_start = '2025-11-03'"))
        add_plan(conn, "org-a", "week", *WEEK_44, "pro", mrr=3000, active_customers=10)
        add_plan(conn, "org-a", "week", *WEEK_44, "starter", mrr=1000, active_customers=10)
        add_plan(conn, "org-a", "week", *WEEK_45, "pro", mrr=3800, new_revenue=500, expansion_revenue=200,
                 transfer_in_revenue=100, active_customers=12, new_customers=1, transferred_in_customers=1)
        add_plan(conn, "org-a", "week", *WEEK_45, "starter", mrr=750, contraction_revenue=50, churned_revenue=100,
                 transfer_out_revenue=100, active_customers=8, churned_customers=1, transferred_out_customers=1)
        for k, addon in enumerate(ADDONS, start=1):
            for week in (WEEK_44, WEEK_45):
                add_plan(conn, "org-a", "week", *week, addon, mrr=10 * k, active_customers=1)
        # Outside the two weeks the report reads.
        add_plan(conn, "org-a", "week", "2025-10-20", "2025-10-26", "legacy", mrr=123.45)
        add_revenue(conn, "org-b", "week", *WEEK_45, 1777777.76, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        add_plan(conn, "org-b", "week", *WEEK_45, "bravo-secret-plan", mrr=777777.77, active_customers=77)
        add_plan(conn, "org-b", "week", *WEEK_45, "pro", mrr=999999.99, active_customers=99)
    return engine


def _data(database, report_type="comprehensive", currency="EUR"):
    report = validate_report(name="Weekly KPIs", report_type=report_type, frequency="weekly",
                             recipients=RECIPIENTS, parameters={})
    period = report_period(DUE, "weekly", report.parameters)
    with database.tenant_transaction("org-a") as conn:
        return report, read_report(conn, "org-a", "Acme Esports", report, period, currency)


def test_the_table_has_the_hand_worked_figures_of_the_ten_largest_plans_and_the_others(plans, database):
    _, data = _data(database)
    rows = [(r["kind"], r["plan"], r["plan_count"], r["mrr"], r["previous_mrr"], r["change_pct"])
            for r in data.plans.rows]
    assert TOP_PLANS == 10
    assert rows == [
        ("plan", "pro", 1, 3800, 3000, Decimal("26.7")),
        ("plan", "starter", 1, 750, 1000, Decimal("-25.0")),
        *(("plan", f"addon-{k:02}", 1, 10 * k, 10 * k, 0) for k in range(10, 2, -1)),
        ("other", None, 2, 30, 30, 0),
        ("total", None, 12, 5100, 4550, Decimal("12.1")),
    ]
    by_plan = {r["plan"] or r["kind"]: r for r in data.plans.rows}
    flows = ("new_revenue", "reactivation_revenue", "expansion_revenue", "contraction_revenue", "churned_revenue",
             "transfer_in_revenue", "transfer_out_revenue", "active_customers", "churned_customers")
    assert [by_plan["pro"][c] for c in flows] == [500, 0, 200, 0, 0, 100, 0, 12, 0]
    assert [by_plan["starter"][c] for c in flows] == [0, 0, 0, 50, 100, 0, 100, 8, 1]
    assert [by_plan["other"][c] for c in flows] == [0, 0, 0, 0, 0, 0, 0, 2, 0]
    # The upgrade's transfer cancels out in the total; the movements are revenue_aggregates'.
    assert [by_plan["total"][c] for c in flows] == [500, 0, 200, 50, 100, 100, 100, 30, 1]


def test_the_shown_plans_and_the_other_row_add_up_to_revenue_aggregates(plans, database):
    _, data = _data(database)
    with plans.connect() as conn:
        mrr, active = conn.execute(sa.text(
            "SELECT mrr, active_customers FROM revenue_aggregates WHERE tenant_id = 'org-a' "
            "AND period_type = 'week' AND period_start = '2025-11-03'")).one()
    shown = [r for r in data.plans.rows if r["kind"] != "total"]
    assert len(shown) == TOP_PLANS + 1 and shown[-1]["kind"] == "other"
    assert sum(r["mrr"] for r in shown) == mrr == 5100
    assert sum(r["active_customers"] for r in shown) == active == 30
    [total] = [r for r in data.plans.rows if r["kind"] == "total"]
    assert total["mrr"] == mrr


def test_one_plan_past_the_ten_is_shown_rather_than_summed(plans, database):
    with plans.begin() as conn:
        conn.execute(sa.text("DELETE FROM revenue_segments WHERE tenant_id = 'org-a' AND value = 'addon-01'"))
    _, data = _data(database)
    assert [r["plan"] for r in data.plans.rows][-2:] == ["addon-02", None]
    assert [r["kind"] for r in data.plans.rows].count("plan") == 11


def test_only_the_comprehensive_report_has_the_table(plans, database):
    _, data = _data(database, report_type="revenue_summary")
    assert data.plans is None and "revenue_segments" not in data.tables


def test_another_tenants_plans_are_never_read(plans, database):
    """The query filters by the tenant itself: even on the pipeline's own connection, which row-level
    security does not restrict, org-a's table has nothing of org-b; inside org-a's tenant
    transaction, asking for org-b gets nothing."""
    report = validate_report(name="x", report_type="comprehensive", frequency="weekly", recipients=RECIPIENTS,
                             parameters={})
    period = report_period(DUE, "weekly", report.parameters)
    with plans.connect() as conn:
        own = read_report(conn, "org-a", "x", report, period)
    assert {r["plan"] for r in own.plans.rows} == {"pro", "starter", *ADDONS[2:], None}
    assert own.plans.rows[0]["mrr"] == 3800  # org-b's pro (999,999.99) is not added to it
    assert "bravo-secret-plan" not in {r[3] for r in own.tables["revenue_segments"].rows}
    with database.tenant_transaction("org-a") as conn:
        foreign = read_report(conn, "org-b", "x", report, period)
    assert foreign.plans.rows == () and foreign.tables["revenue_segments"].rows == ()


def test_the_email_text_csv_and_pdf_show_the_table(plans, database, mail, inbox):
    with plans.begin() as conn:
        add_report(conn, "r1", recipients=["ann@example.com"], parameters={"pdf": True})
    assert deliver_scheduled(database, mail, "r1", now=NOW).status == "sent"
    [message] = inbox.messages()
    html = message.get_body(("html",)).get_content()
    plain = message.get_body(("plain",)).get_content()
    rows = figure_rows(html)
    # MRR's change: percent, the arrow of its direction, coloured by MRR's polarity.
    assert rows["pro"][:3] == ("3,800.00 EUR", "3,000.00 EUR", "▲\xa0+26.7 %") and rows["pro"][3]["style"].endswith(
        f"color:{GREEN};")
    assert rows["starter"][:3] == ("750.00 EUR", "1,000.00 EUR", "▼\xa0-25.0 %")
    assert rows["starter"][3]["style"].endswith(f"color:{RED};")
    assert rows["addon-03"][:3] == ("30.00 EUR", "30.00 EUR", "0.0 %") and rows["addon-03"][3]["style"].endswith(
        f"color:{GREY};")
    assert rows["Other 2 plans"][:3] == ("30.00 EUR", "30.00 EUR", "0.0 %")
    assert rows["All plans"][:3] == ("5,100.00 EUR", "4,550.00 EUR", "▲\xa0+12.1 %")
    assert "addon-02" not in rows and "addon-01" not in rows
    assert "The 10 plans of the largest MRR, then the other 2 summed." in html
    details = "Transfers in 100.00 EUR</span> · <span style=\"white-space:nowrap;\">Transfers out 0.00 EUR"
    assert details in html
    assert "Transfers out 100.00 EUR" in html and "Churned customers 1" in html
    for text in ("Revenue by plan", "pro", "3,800.00 EUR", "previous 3,000.00 EUR, change ▲ +26.7 % (better)",
                 "change ▼ -25.0 % (worse)", "Other 2 plans", "All plans", "Transfers in 100.00 EUR",
                 "Paying customers 12"):
        assert text in plain, text
    for foreign in ("bravo", "777,777.77", "999,999.99", "legacy", "123.45"):
        assert foreign not in html and foreign not in plain, foreign

    attachments = {p.get_filename(): p for p in message.iter_attachments()}
    segments = list(csv.DictReader(io.StringIO(
        attachments["revenue_segments_2025-11-03_2025-11-09.csv"].get_content(), newline="")))
    # Every plan of both weeks, read back as written.
    assert len(segments) == 2 * 12
    assert {(r["period_start"], r["plan"]): r["mrr"] for r in segments}[("2025-11-03", "pro")] == "3800.00"
    [pro] = [r for r in segments if (r["period_start"], r["plan"]) == ("2025-11-03", "pro")]
    assert (pro["transfer_in_revenue"], pro["expansion_revenue"], pro["active_customers"], pro["currency"]) == (
        "100.00", "200.00", "12", "EUR")
    assert sum(Decimal(r["mrr"]) for r in segments if r["period_start"] == "2025-11-03") == 5100
    assert {r["plan"] for r in segments} == {"pro", "starter", *ADDONS}

    pdf = pypdf.PdfReader(io.BytesIO(attachments["report_2025-11-03_2025-11-09.pdf"].get_content()))
    text = " ".join(" ".join(page.extract_text().split()) for page in pdf.pages)
    for expected in ("Revenue by plan", "pro 3,800.00 EUR 3,000.00 EUR ▲ +26.7 %", "Other 2 plans",
                     "All plans 5,100.00 EUR 4,550.00 EUR ▲ +12.1 %", "Transfers in 100.00 EUR"):
        assert expected in text, expected
    assert "bravo" not in text and "777,777.77" not in text


def test_the_webhook_and_slack_carry_the_table(plans, database):
    report, data = _data(database)
    rendered = render(data, report, "example.com", "k1")
    body = payload(data, report, rendered, report_id="r1", tenant_id="org-a",
                   scheduled_for=dt.datetime(2025, 11, 10, 8), csv_links={})
    table = body["sections"]["revenue"]["plans"]
    assert (table["top"], table["missing"], table["not_computed"], table["empty_text"]) == (10, False, False, None)
    pro = table["rows"][0]
    assert {k: pro[k] for k in ("kind", "plan", "mrr", "previous_mrr", "change_pct", "change_unit", "polarity",
                                "tone", "transfer_in_revenue", "expansion_revenue", "active_customers")} == {
        "kind": "plan", "plan": "pro", "mrr": "3800.00", "previous_mrr": "3000.00", "change_pct": "26.7",
        "change_unit": "%", "polarity": "higher_is_better", "tone": "good", "transfer_in_revenue": "100.00",
        "expansion_revenue": "200.00", "active_customers": 12}
    assert [r["label"] for r in table["rows"]][-2:] == ["Other 2 plans", "All plans"]
    assert table["rows"][1]["tone"] == "bad"
    assert len(body["tables"]["revenue_segments"]["rows"]) == 24
    slack = "\n".join(b["text"]["text"] for b in slack_message(body)["blocks"] if b["type"] == "section")
    assert "starter: *750.00 EUR* (previous 1,000.00 EUR, ▼ -25.0 % :red_circle: worse)" in slack


NOT_COMPUTED = "No plan figures have been computed for this period yet."
NO_ACTIVITY = "No plan activity in this period: no plan had recurring revenue or a change of it."


@pytest.mark.parametrize("ran, pending, sentence", [
    (None, True, NOT_COMPUTED),  # never ran
    (dt.datetime(2025, 11, 9, 23), True, NOT_COMPUTED),  # ran before the period's last day ended
    (dt.datetime(2025, 11, 10, 1), False, NO_ACTIVITY),
])
def test_no_rows_say_not_computed_or_no_activity_as_the_sections_do(plans, database, ran, pending, sentence):
    """Before revenue_segments has run past the period's last day its rows may come later; after, none
    means no plan had MRR or a change."""
    with plans.begin() as conn:
        conn.execute(sa.text("DELETE FROM revenue_segments WHERE tenant_id = 'org-a' AND period_start = '2025-11-03'"))
        if ran is not None:
            conn.execute(sa.text("INSERT INTO aggregate_freshness (aggregate, materialized_at) "
                                 "VALUES ('revenue_segments', :at) ON CONFLICT (aggregate) "
                                 "DO UPDATE SET materialized_at = EXCLUDED.materialized_at"), {"at": ran})
        else:
            conn.execute(sa.text("DELETE FROM aggregate_freshness WHERE aggregate = 'revenue_segments'"))
    report, data = _data(database)
    rendered = render(data, report, "example.com", "k1")
    assert sentence in rendered.html() and sentence in rendered.text()
    assert "Other 2 plans" not in rendered.html()
    table = payload(data, report, rendered, report_id="r1", tenant_id="org-a",
                    scheduled_for=dt.datetime(2025, 11, 10, 8), csv_links={})["sections"]["revenue"]["plans"]
    assert (table["missing"], table["not_computed"], table["empty_text"]) == (True, pending, sentence)


def test_a_long_plan_id_and_the_tenants_fixture_render(tenants, database):
    """The tenants fixture (conftest.py): an upgrade from starter to pro, and a plan with a long id."""
    report, data = _data(database, currency="USD")
    rows = figure_rows(render(data, report, "example.com", "k1").html())
    assert rows["pro"][:3] == ("8,400.00 USD", "6,000.00 USD", "▲\xa0+40.0 %")
    assert rows["starter"][:3] == ("3,100.00 USD", "4,000.00 USD", "▼\xa0-22.5 %")
    assert rows[LONG_PLAN][:3] == ("1,000.00 USD", "0.00 USD", "▲\xa0–")
    assert rows[LONG_PLAN][3]["style"].endswith(f"color:{GREEN};")  # a rise from 0 is judged too
    assert rows["All plans"][:3] == ("12,500.00 USD", "10,000.00 USD", "▲\xa0+25.0 %")
    assert "Other" not in " ".join(rows)


@pytest.mark.parametrize("end, period_type, start", [
    (dt.date(2025, 11, 9), "week", dt.date(2025, 11, 3)),
    (dt.date(2025, 11, 30), "month", dt.date(2025, 11, 1)),
    (dt.date(2024, 2, 29), "month", dt.date(2024, 2, 1)),
    (dt.date(2025, 11, 9), "day", dt.date(2025, 11, 9)),
])
def test_balances_are_read_from_the_last_period_of_a_side(end, period_type, start):
    """With lookback_periods > 1 a side has several periods: MRR is the last one's."""
    assert last_period_start(end, period_type) == start


def test_from_events_through_the_aggregates_to_the_monthly_table(engine, db_url, database, monkeypatch):
    """The table as the pipeline fills revenue_segments (docs/metrics.md#segment-movements), not as a
    test inserts it. The monthly report due 1 Dec 2025: November against October.

    October ends with starter 30 (c1 10, c4 20) and pro 30 (c2). In November c1 upgrades from
    starter 10 to pro 30 (an expansion of 20: pro takes it and the 10 beyond as a transfer in,
    starter transfers 10 out), c3 starts on team at 50 (new) and c4 cancels starter 20 (churned).
    pro: 30 + 20 + 10 = 60, +100.0 %, 2 customers; team: 50 from 0, 1 customer; starter:
    30 − 20 − 10 = 0, −100.0 %, 1 churned. All plans 110 against 60, +83.3 % (50 / 60)."""
    monkeypatch.setenv("ANALYTICS_RETENTION_MONTHS", "240")  # the events of 2025 stay
    with engine.begin() as conn:
        for user, at, subscription, plan, amount in [("c1", "2025-10-05", "s1", "starter", 10),
                                                     ("c2", "2025-10-07", "s2", "pro", 30),
                                                     ("c4", "2025-10-08", "s4", "starter", 20),
                                                     ("c3", "2025-11-03", "s3", "team", 50)]:
            add_event(conn, "org-a", "subscription_started", f"{at} 09:00", user, subscription_id=subscription,
                      plan_id=plan, amount=amount, interval="month")
        add_event(conn, "org-a", "subscription_changed", "2025-11-10 09:00", "c1", subscription_id="s1",
                  plan_id="pro", amount=30, interval="month")
        add_event(conn, "org-a", "subscription_cancelled", "2025-11-20 09:00", "c4", subscription_id="s4")
    result = materialize_range([subscription_history, payment_history, customer_sources, revenue_aggregates,
                                revenue_segments], db_url, "2025-10-01", "2025-11-30",
                               selection=["revenue_aggregates", "revenue_segments"])
    assert result.success
    report = validate_report(name="Monthly", report_type="comprehensive", frequency="monthly", recipients=RECIPIENTS,
                             parameters={})
    period = report_period(dt.datetime(2025, 12, 1, 8), "monthly", report.parameters)
    with database.tenant_transaction("org-a") as conn:
        data = read_report(conn, "org-a", "Org org-a", report, period)
    columns = ("kind", "plan", "mrr", "previous_mrr", "change_pct", "new_revenue", "expansion_revenue",
               "churned_revenue", "transfer_in_revenue", "transfer_out_revenue", "active_customers",
               "churned_customers")
    assert [tuple(r[c] for c in columns) for r in data.plans.rows] == [
        ("plan", "pro", 60, 30, 100, 0, 20, 0, 10, 0, 2, 0),
        ("plan", "team", 50, 0, None, 50, 0, 0, 0, 0, 1, 0),
        ("plan", "starter", 0, 30, -100, 0, 0, 20, 0, 10, 0, 1),
        ("total", None, 110, 60, Decimal("83.3"), 50, 20, 20, 10, 10, 3, 1),
    ]
    [mrr] = [f.current for f in data.figures["revenue"] if f.metric == "mrr"]
    assert mrr == 110
