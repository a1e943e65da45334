"""The KPI block of the revenue and comprehensive reports and the KPI columns of their revenue CSV
(docs/metrics.md#kpis), against real PostgreSQL and SMTP on loopback.

The aggregate rows are inserted by hand; the KPIs the email must show are worked
out from them in the comments, and the CSV is compared with those and with the view revenue_kpis.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
import sqlalchemy as sa

from analytics_pipeline.reports.delivery import deliver_scheduled
from analytics_pipeline.reports.queries import read_report
from analytics_pipeline.reports.schedule import report_period
from analytics_pipeline.reports.validation import validate_report

from .support import RECIPIENTS, add_org, add_report, text_parts

pytestmark = pytest.mark.usefixtures("delivery_settings")

DUE = dt.datetime(2025, 12, 1, 8, 0)  # monthly reports due now cover November 2025
NOW = DUE + dt.timedelta(minutes=5)
CSV_NAME = "revenue_aggregates_2025-11-01_2025-11-30.csv"

COLUMNS = ("mrr", "arr", "new_revenue", "reactivation_revenue", "expansion_revenue", "contraction_revenue",
           "churned_revenue", "total_revenue", "payment_count", "payment_success_count", "refund_count",
           "refund_amount", "active_customers", "new_customers", "reactivated_customers", "churned_customers",
           "ttm_cohort_mrr_before", "ttm_cohort_mrr", "ttm_cohort_retained_mrr")


def add_row(conn, tenant, period_type, start, end, **values) -> None:
    row = {c: 0 for c in COLUMNS} | {"ttm_cohort_mrr_before": None, "ttm_cohort_mrr": None,
                                     "ttm_cohort_retained_mrr": None} | values
    row["arr"] = 12 * row["mrr"]
    conn.execute(
        sa.text(
            f"INSERT INTO revenue_aggregates (id, tenant_id, period_type, period_start, period_end, "
            f"{', '.join(COLUMNS)}) VALUES (:id, :t, :pt, :s, :e, {', '.join(':' + c for c in COLUMNS)})"
        ),
        {"id": f"{tenant}:{period_type}:{start}", "t": tenant, "pt": period_type, "s": start, "e": end, **row},
    )


@pytest.fixture
def kpi_tenants(engine):
    """org-a: October 2025 is its first month (every other denominator 0), November has every movement.
    org-b: conspicuous numbers (ARPA 7,777.77, NRR 333.3 %) that must appear nowhere in org-a's."""
    with engine.begin() as conn:
        add_org(conn, "org-a", "Acme Esports")
        add_org(conn, "org-b", "Bravo Gaming")
        # October: 35 customers arrive with 10,000 of MRR. Opening MRR and customers 0, no churn
        # or contraction: logo churn, both MRR churn rates, GRR, NRR and the quick ratio are n/a.
        # Its TTM cohort (stored by the run, docs/metrics.md#ttm-nrr): c2 had 200 at the end of October
        # 2024 and churned since: 0 / 200, both TTM NRR and GRR 0.0 %.
        add_row(conn, "org-a", "month", "2025-10-01", "2025-10-31", mrr=10000, new_revenue=10000,
                active_customers=35, new_customers=35, total_revenue=9000,
                ttm_cohort_mrr_before=200, ttm_cohort_mrr=0, ttm_cohort_retained_mrr=0)
        # November: MRR 12,200 = 10,000 + 2,000 new + 700 reactivation + 1,000 expansion − 300
        # contraction − 1,200 churned; customers 40 = 35 + 8 new + 2 reactivated − 5 churned.
        #   ARPA 12,200 / 40 = 305.00; logo churn 5 / 35 = 14.3 %;
        #   gross MRR churn (1,200 + 300) / 10,000 = 15.0 %; net (1,500 − 1,000 − 700) / 10,000 = −2.0 %;
        #   GRR (10,000 − 1,500) / 10,000 = 85.0 %; NRR (10,000 + 1,000 − 1,500) / 10,000 = 95.0 %;
        #   quick ratio (2,000 + 1,000 + 700) / 1,500 = 2.47 (2.5 shown).
        add_row(conn, "org-a", "month", "2025-11-01", "2025-11-30", mrr=12200, new_revenue=2000,
                reactivation_revenue=700, expansion_revenue=1000, contraction_revenue=300, churned_revenue=1200,
                active_customers=40, new_customers=8, reactivated_customers=2, churned_customers=5,
                total_revenue=11000, ttm_cohort_mrr_before=300, ttm_cohort_mrr=150, ttm_cohort_retained_mrr=100)
        # A day row of November in the CSV's trend: one customer of 12,200 churned that day.
        add_row(conn, "org-a", "day", "2025-11-30", "2025-11-30", mrr=12200, churned_revenue=100,
                active_customers=40, churned_customers=1)
        # November's TTM cohort, the customers with MRR at the end of 30 Nov 2024: c1 with 100, now
        # 150 (expansion), c2 with 200, now churned; c3 arrived in 2025 and is not in it.
        #   TTM NRR = (150 + 0) / (100 + 200) = 50.0 %; TTM GRR = (min(150, 100) + 0) / 300 = 33.3 %.
        # org-b: ARPA 777,777.70 / 100 = 7,777.78, NRR 333.3 %, TTM NRR 900.0 %.
        add_row(conn, "org-b", "month", "2025-11-01", "2025-11-30", mrr=777777.70, expansion_revenue=544444.39,
                active_customers=100, ttm_cohort_mrr_before=10, ttm_cohort_mrr=90, ttm_cohort_retained_mrr=10)
    return engine


def _report(conn, report_id, report_type):
    add_report(conn, report_id, report_type=report_type, frequency="monthly", next_run_at=DUE,
               recipients=[RECIPIENTS[0]])


EXPECTED_KPIS = [
    # label, this period, previous, change (arrow of the direction; better or worse by the KPI's polarity)
    ("ARPA (MRR per paying customer)", "305.00 USD", "285.71 USD", "▲ +6.8 % (better)"),
    ("Logo churn rate", "14.3 %", "n/a", "–"),
    ("Gross MRR churn rate", "15.0 %", "n/a", "–"),
    ("Net MRR churn rate", "-2.0 %", "n/a", "–"),
    ("Gross revenue retention (GRR)", "85.0 %", "n/a", "–"),
    ("Net revenue retention (NRR)", "95.0 %", "n/a", "–"),
    ("Quick ratio", "2.5", "n/a", "–"),
    ("NRR, trailing twelve months", "50.0 %", "0.0 %", "▲ +50.0 pp (better)"),
    ("GRR, trailing twelve months", "33.3 %", "0.0 %", "▲ +33.3 pp (better)"),
]


@pytest.mark.parametrize("report_type", ["revenue_summary", "comprehensive"])
def test_the_kpi_block_shows_the_hand_worked_kpis_and_nothing_of_another_tenant(
        kpi_tenants, database, mail, inbox, report_type):
    # October's ARPA: 10,000 / 35 = 285.71; +6.8 % = (305 − 285.71) / 285.71.
    with kpi_tenants.begin() as conn:
        _report(conn, "r1", report_type)
    outcome = deliver_scheduled(database, mail, "r1", now=NOW)
    assert outcome.status == "sent", outcome.detail
    [message] = inbox.messages()
    plain = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()

    # The customer counts are figures of the revenue section, above the block.
    assert f"{'Paying customers (end of period)':<30} {'40':>16}   previous 35, change ▲ +14.3 % (better)" in plain
    assert "KPIs of the month 1 Nov – 30 Nov 2025" in plain and "KPIs of the month 1 Nov – 30 Nov 2025" in html
    block = plain[plain.index("KPIs of the month"):]
    lines = [line.strip() for line in block.splitlines()[1:len(EXPECTED_KPIS) + 1]]
    assert lines == [f"{label:<30} {current:>16}   previous {previous}, change {change}".strip()
                     for label, current, previous, change in EXPECTED_KPIS]
    for label, current, previous, _ in EXPECTED_KPIS:
        assert label in html and f"<strong>{current}</strong>" in html, label

    # Nothing of org-b, in any part.
    content = text_parts(message)
    for foreign in ("Bravo", "7,777.78", "7777.78", "333.3", "900.0", "777,777.70", "777777.70"):
        assert foreign not in content, foreign


def test_the_revenue_csv_carries_each_rows_kpis_as_the_view_has_them(kpi_tenants, database, mail, inbox):
    with kpi_tenants.begin() as conn:
        _report(conn, "r1", "revenue_summary")
    assert deliver_scheduled(database, mail, "r1", now=NOW).status == "sent"
    [message] = inbox.messages()
    attachments = {p.get_filename(): p.get_content() for p in message.iter_attachments()}
    rows = {(r["period_type"], r["period_start"]): r for r in csv.DictReader(io.StringIO(attachments[CSV_NAME]))}
    assert set(rows) == {("month", "2025-10-01"), ("month", "2025-11-01"), ("day", "2025-11-30")}

    november = rows[("month", "2025-11-01")]
    worked_out = {
        "active_customers": 40, "new_customers": 8, "reactivated_customers": 2, "churned_customers": 5,
        "opening_mrr": 10000, "opening_customers": 35, "arpa": 305, "logo_churn_rate": Decimal(5) / 35,
        "gross_mrr_churn_rate": Decimal("0.15"), "net_mrr_churn_rate": Decimal("-0.02"), "grr": Decimal("0.85"),
        "nrr": Decimal("0.95"), "quick_ratio": Decimal(3700) / 1500, "ttm_nrr": Decimal("0.5"),
        "ttm_grr": Decimal(1) / 3,
    }
    for column, value in worked_out.items():
        assert abs(Decimal(november[column]) - value) < Decimal("1e-12"), column
    october = rows[("month", "2025-10-01")]
    for column in ("logo_churn_rate", "gross_mrr_churn_rate", "net_mrr_churn_rate", "grr", "nrr", "quick_ratio"):
        assert october[column] == "", column  # NULL: an empty cell, never 0
    assert Decimal(october["ttm_nrr"]) == Decimal(october["ttm_grr"]) == 0  # a denominator of 200: 0, not NULL
    assert rows[("day", "2025-11-30")]["ttm_nrr"] == ""  # TTM exists for months only

    # Every KPI cell is the view's value for the row, in plain decimal notation (never 0E-20).
    kpi_columns = [c for c in next(iter(rows.values())) if c not in {"period_type", "period_start", "period_end"}]
    with kpi_tenants.connect() as conn:
        view = conn.execute(sa.text(
            "SELECT * FROM revenue_kpis WHERE tenant_id = 'org-a'")).mappings().all()
    for row in view:
        key = (row["period_type"], row["period_start"].isoformat())
        for column in kpi_columns:
            if column in row:
                cell = rows[key][column]
                assert "E" not in cell, (key, column, cell)
                assert (cell == "") if row[column] is None else (Decimal(cell) == row[column]), (key, column)


def test_kpis_are_read_under_the_tenants_row_level_security(kpi_tenants, database):
    """Asked for org-b's KPIs inside org-a's tenant transaction, the report gets none of them."""
    report = validate_report(name="x", report_type="revenue_summary", frequency="monthly",
                             recipients=RECIPIENTS, parameters={})
    period = report_period(DUE, "monthly", report.parameters)
    with database.tenant_transaction("org-a") as conn:
        foreign = read_report(conn, "org-b", "x", report, period)
        own = read_report(conn, "org-a", "x", report, period)
    assert all(f.current is None and f.previous is None for f in foreign.kpis)
    assert foreign.kpi_period is None
    by_metric = {f.metric: f for f in own.kpis}
    assert by_metric["arpa"].current == Decimal("305.00")
    assert by_metric["ttm_nrr"].current == Decimal("0.5")


def test_weekly_reports_have_no_ttm_lines(kpi_tenants, database):
    report = validate_report(name="x", report_type="revenue_summary", frequency="weekly",
                             recipients=RECIPIENTS, parameters={})
    period = report_period(DUE, "weekly", report.parameters)
    with database.tenant_transaction("org-a") as conn:
        data = read_report(conn, "org-a", "x", report, period)
    assert [f.metric for f in data.kpis][-2:] == ["nrr", "quick_ratio"]
