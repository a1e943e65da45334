"""The customer counts of revenue_aggregates and the KPIs of the view revenue_kpis
(docs/metrics.md#customers, docs/metrics.md#kpis) on a small history worked out by hand in the
comments; the customer bridge check on a corrupted row; row-level security through the view."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from fractions import Fraction

import pytest
import sqlalchemy as sa

from analytics_pipeline.core import db, migrate
from analytics_pipeline.core.resources import AnalyticsDatabase
from analytics_pipeline.aggregation.checks import NO_MALFORMED_EVENTS_CHECK
from analytics_pipeline.revenue.assets import REVENUE_AGGREGATE, revenue_aggregates, subscription_history
from analytics_pipeline.revenue.checks import CUSTOMER_BRIDGE_CHECK

from ..helpers import add_event, materialize_range, rows

ASSETS = [subscription_history, revenue_aggregates]
MONTH = dict(plan_id="basic", interval="month")
KPIS = (
    "mrr, active_customers, new_customers, reactivated_customers, churned_customers, opening_mrr, "
    "opening_customers, arpa, logo_churn_rate, gross_mrr_churn_rate, net_mrr_churn_rate, grr, nrr, "
    "quick_ratio, ttm_nrr, ttm_grr"
)


@pytest.fixture(autouse=True)
def keep_raw_events_forever(monkeypatch):
    monkeypatch.setenv("ANALYTICS_RETENTION_MONTHS", "240")


def history(conn, tenant="t1"):
    """a: 100 from Jan 5 2025, 150 from Mar 10.
    b: two subscriptions from Jan 10, 50 and 30; cancels the 30 on Feb 10 (a contraction, still a
       customer); cancels the 50 on Jun 10 2025 (churn).
    c: 40 from Jan 20, cancels Feb 15 (churn), back at 60 on Mar 5 (reactivation).
    d: starts and cancels on Feb 20 (the same day: no trace).
    e: 20 from Feb 3, cancels Feb 25 (a sign-up and a churn in one month).
    f: 500 from Jul 1 2025 (not in the cohort of January 2025)."""
    add_event(conn, tenant, "subscription_started", "2025-01-05 09:00", "a", subscription_id="a1", amount=100, **MONTH)
    add_event(conn, tenant, "subscription_started", "2025-01-10 09:00", "b", subscription_id="b1", amount=50, **MONTH)
    add_event(conn, tenant, "subscription_started", "2025-01-10 09:05", "b", subscription_id="b2", amount=30, **MONTH)
    add_event(conn, tenant, "subscription_started", "2025-01-20 09:00", "c", subscription_id="c1", amount=40, **MONTH)
    add_event(conn, tenant, "subscription_started", "2025-02-03 09:00", "e", subscription_id="e1", amount=20, **MONTH)
    add_event(conn, tenant, "subscription_cancelled", "2025-02-10 09:00", "b", subscription_id="b2")
    add_event(conn, tenant, "subscription_cancelled", "2025-02-15 09:00", "c", subscription_id="c1")
    add_event(conn, tenant, "subscription_started", "2025-02-20 10:00", "d", subscription_id="d1", amount=70, **MONTH)
    add_event(conn, tenant, "subscription_cancelled", "2025-02-20 18:00", "d", subscription_id="d1")
    add_event(conn, tenant, "subscription_cancelled", "2025-02-25 09:00", "e", subscription_id="e1")
    add_event(conn, tenant, "subscription_started", "2025-03-05 09:00", "c", subscription_id="c2", amount=60, **MONTH)
    add_event(conn, tenant, "subscription_changed", "2025-03-10 09:00", "a", subscription_id="a1", amount=150, interval="month")
    add_event(conn, tenant, "subscription_cancelled", "2025-06-10 09:00", "b", subscription_id="b1")
    add_event(conn, tenant, "subscription_started", "2025-07-01 09:00", "f", subscription_id="f1", amount=500, **MONTH)


def kpis(conn, period_type, start, tenant="t1"):
    found = rows(
        conn,
        f"SELECT {KPIS} FROM revenue_kpis WHERE tenant_id = :t AND period_type = :p AND period_start = :s",
        t=tenant, p=period_type, s=start,
    )
    assert len(found) == 1, (period_type, start, found)
    return found[0]


def fraction(value):
    """A NUMERIC quotient as an exact fraction at the 15th decimal, to compare with a hand-worked one."""
    return None if value is None else round(Fraction(value), 15)


def expected(mrr, active, new, reactivated, churned, opening_mrr, opening_customers, arpa,
             logo_churn, gross_churn, net_churn, grr, nrr, quick, ttm_nrr=None, ttm_grr=None):
    exact = lambda f: None if f is None else round(Fraction(f), 15)  # noqa: E731
    return {
        "mrr": Decimal(mrr), "active_customers": active, "new_customers": new,
        "reactivated_customers": reactivated, "churned_customers": churned,
        "opening_mrr": Decimal(opening_mrr), "opening_customers": opening_customers,
        "arpa": None if arpa is None else Decimal(arpa),
        "logo_churn_rate": exact(logo_churn), "gross_mrr_churn_rate": exact(gross_churn),
        "net_mrr_churn_rate": exact(net_churn), "grr": exact(grr), "nrr": exact(nrr),
        "quick_ratio": exact(quick), "ttm_nrr": exact(ttm_nrr), "ttm_grr": exact(ttm_grr),
    }


def actual(row):
    quotients = ("logo_churn_rate", "gross_mrr_churn_rate", "net_mrr_churn_rate", "grr", "nrr",
                 "quick_ratio", "ttm_nrr", "ttm_grr")
    return {k: fraction(v) if k in quotients else v for k, v in row.items()}


@pytest.fixture
def worked(engine, db_url):
    with engine.begin() as conn:
        history(conn)
    result = materialize_range(ASSETS, db_url, "2025-01-01", "2026-01-31", selection=["revenue_aggregates"])
    assert result.success
    return engine


def test_kpis_by_hand(worked):
    with worked.connect() as conn:
        # January: a 100 (Jan 5), b 50 + 30 (Jan 10), c 40 (Jan 20): MRR 220, 3 new customers.
        # Nothing before: opening MRR and customers 0, every rate over them NULL, and nothing
        # lost: the quick ratio is NULL too. ARPA 220 / 3 = 73.33.
        assert actual(kpis(conn, "month", "2025-01-01")) == expected(
            220, 3, 3, 0, 0, 0, 0, "73.33", None, None, None, None, None, None)
        # February: e new 20 (Feb 3: 240, 4 customers); b drops its 30 (Feb 10: contraction 30,
        # b stays); c churns 40 (Feb 15); d's same-day start and cancel leaves nothing (Feb 20);
        # e churns 20 (Feb 25). MRR 150, customers a and b. Opening 150 - (20 - 30 - 60) = 220,
        # customers 2 - (1 - 2) = 3. Logo churn 2/3; gross and net churn (60 + 30) / 220;
        # GRR = NRR = (220 - 60 - 30) / 220; quick ratio 20 / 90; ARPA 150 / 2.
        assert actual(kpis(conn, "month", "2025-02-01")) == expected(
            150, 2, 1, 0, 2, 220, 3, "75.00", Fraction(2, 3), Fraction(90, 220), Fraction(90, 220),
            Fraction(130, 220), Fraction(130, 220), Fraction(20, 90))
        # March: c back at 60 (Mar 5: reactivation), a 100 -> 150 (Mar 10: expansion 50). MRR 260,
        # 3 customers, opening 150 and 2. Logo and gross churn 0 (not NULL: the denominators are
        # not 0); net churn (0 - 50 - 60) / 150; GRR 150 / 150; NRR (150 + 50) / 150, without the
        # reactivation (docs/metrics.md#kpi-conventions); quick ratio over no loss: NULL.
        # ARPA 260 / 3 = 86.67. TTM: nobody had MRR at the end of March 2024: NULL.
        assert actual(kpis(conn, "month", "2025-03-01")) == expected(
            260, 3, 0, 1, 0, 150, 2, "86.67", 0, 0, Fraction(-110, 150), 1, Fraction(200, 150), None)
        # The quarter sums its months' flows; its active customers are its last day's.
        # Opening 0: every rate NULL; quick ratio (new 240 + expansion 50 + reactivation 60) /
        # (churned 60 + contraction 30).
        assert actual(kpis(conn, "quarter", "2025-01-01")) == expected(
            260, 3, 4, 1, 2, 0, 0, "86.67", None, None, None, None, None, Fraction(350, 90))
        # A day: Feb 20 (d) is quiet; Feb 25 e churns: 170 -> 150, customers 3 -> 2.
        assert actual(kpis(conn, "day", "2025-02-20")) == expected(
            170, 3, 0, 0, 0, 170, 3, "56.67", 0, 0, 0, 1, 1, None)
        assert actual(kpis(conn, "day", "2025-02-25")) == expected(
            150, 2, 0, 0, 1, 170, 3, "75.00", Fraction(1, 3), Fraction(20, 170), Fraction(20, 170),
            Fraction(150, 170), Fraction(150, 170), 0)
        # January 2026 against the cohort of the end of January 2025: a 100, b 80, c 40 (220).
        # Now a 150, b 0 (churned in June), c 60 (came back); f (500) joined since and is not in
        # it. TTM NRR (150 + 0 + 60) / 220; TTM GRR (100 + 0 + 40) / 220. The month itself:
        # MRR 710 (a, c, f), nothing moved.
        assert actual(kpis(conn, "month", "2026-01-01")) == expected(
            710, 3, 0, 0, 0, 710, 3, "236.67", 0, 0, 0, 1, 1, None, Fraction(210, 220), Fraction(140, 220))
        # TTM figures are for month rows only.
        assert kpis(conn, "quarter", "2026-01-01")["ttm_nrr"] is None
        assert kpis(conn, "year", "2025-01-01")["ttm_grr"] is None


def test_same_day_start_and_cancel_leaves_no_customer_day(worked):
    with worked.connect() as conn:
        assert rows(conn, "SELECT * FROM customer_mrr_days WHERE user_id = 'd'") == []
        # b cancelled one of two subscriptions: a contraction, not a churn.
        b = rows(conn, "SELECT day, mrr, contraction_revenue, churned_revenue FROM customer_mrr_days "
                       "WHERE user_id = 'b' ORDER BY day")
        assert [(r["day"], r["mrr"], r["contraction_revenue"], r["churned_revenue"]) for r in b] == [
            (dt.date(2025, 1, 10), 80, 0, 0), (dt.date(2025, 2, 10), 50, 30, 0), (dt.date(2025, 6, 10), 0, 0, 50)]


def test_customer_bridge_fails_on_a_corrupted_row(worked):
    with worked.begin() as conn:
        results = {r.check_name: r for r in REVENUE_AGGREGATE.check_stored_rows(conn, dt.date(2025, 2, 1), dt.date(2025, 3, 1))}
        assert all(r.passed for name, r in results.items() if name != NO_MALFORMED_EVENTS_CHECK)
    with worked.begin() as conn:
        conn.execute(sa.text("UPDATE revenue_aggregates SET active_customers = active_customers + 1 "
                             "WHERE id = 't1:month:2025-02-01'"))
        results = {r.check_name: r for r in REVENUE_AGGREGATE.check_stored_rows(conn, dt.date(2025, 2, 1), dt.date(2025, 3, 1))}
    assert not results[CUSTOMER_BRIDGE_CHECK].passed
    assert results[CUSTOMER_BRIDGE_CHECK].metadata["offending_rows"].value == 1
    assert "t1:month:2025-02-01" in str(results[CUSTOMER_BRIDGE_CHECK].metadata["examples"].data)


def test_a_tenant_sees_only_its_own_kpis_through_the_view(worked, db_url):
    with worked.begin() as conn:
        history(conn, tenant="t2")
    assert materialize_range(ASSETS, db_url, "2025-01-01", "2026-01-31", selection=["revenue_aggregates"]).success
    database = AnalyticsDatabase(url=db_url)
    with worked.connect() as conn:
        everyone = conn.execute(sa.text("SELECT tenant_id, count(*) FROM revenue_kpis GROUP BY 1 ORDER BY 1")).all()
    assert [tenant for tenant, _ in everyone] == ["t1", "t2"]
    with database.tenant_transaction("t1") as conn:
        seen = conn.execute(sa.text("SELECT tenant_id, count(*) FROM revenue_kpis GROUP BY 1")).all()
        # Asking for the other tenant by name finds nothing, TTM figures included.
        other = conn.execute(sa.text("SELECT count(*) FROM revenue_kpis WHERE tenant_id = 't2'")).scalar_one()
        ttm = conn.execute(sa.text(
            "SELECT ttm_nrr FROM revenue_kpis WHERE period_type = 'month' AND period_start = '2026-01-01'"
        )).scalar_one()
    assert seen == [("t1", dict(everyone)["t1"])]
    assert other == 0
    assert fraction(ttm) == round(Fraction(210, 220), 15)


def _counts(engine):
    with engine.connect() as conn:
        aggregates = rows(conn, "SELECT id, active_customers, new_customers, reactivated_customers, churned_customers, "
                                "ttm_cohort_mrr_before, ttm_cohort_mrr, ttm_cohort_retained_mrr "
                                "FROM revenue_aggregates ORDER BY id")
        state = rows(conn, "SELECT tenant_id, day, active_customers, new_customers, reactivated_customers, "
                           "churned_customers FROM tenant_mrr_days ORDER BY tenant_id, day")
    return aggregates, state


def test_the_migration_gives_existing_rows_the_counts_a_fresh_run_computes(worked, db_url):
    """Rows written before revision 0015: its upgrade fills their counts and TTM figures from the
    MRR state, equal to what the run computes."""
    computed = _counts(worked)
    assert sum(r["churned_customers"] for r in computed[0]) > 0 and sum(r["reactivated_customers"] for r in computed[0]) > 0
    assert any(r["ttm_cohort_mrr_before"] for r in computed[0])
    db.dispose(db_url)
    migrate.downgrade(db_url, "0014_customer_mrr_state")  # the rows stay, without their counts
    with worked.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM revenue_aggregates")).scalar_one() == len(computed[0])
    migrate.upgrade(db_url)
    assert _counts(worked) == computed


def test_a_run_over_one_day_rewrites_its_month_with_the_same_ttm(worked, db_url):
    """An hourly run writes the month from its stored days outside the window and the window's."""
    with worked.connect() as conn:
        before = kpis(conn, "month", "2026-01-01")
    assert materialize_range(ASSETS, db_url, "2026-01-15", "2026-01-15", selection=["revenue_aggregates"]).success
    with worked.connect() as conn:
        assert kpis(conn, "month", "2026-01-01") == before
        assert fraction(before["ttm_grr"]) == round(Fraction(140, 220), 15)


def test_the_view_has_the_documented_columns(engine):
    with engine.connect() as conn:
        columns = conn.execute(sa.text(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'revenue_kpis' ORDER BY ordinal_position"
        )).scalars().all()
    assert columns == [
        "tenant_id", "period_type", "period_start", "period_end", "mrr", "arr",
        "active_customers", "new_customers", "reactivated_customers", "churned_customers",
        "opening_mrr", "opening_customers",
        "arpa", "logo_churn_rate", "gross_mrr_churn_rate", "net_mrr_churn_rate", "grr", "nrr", "quick_ratio",
        "ttm_nrr", "ttm_grr",
    ]


def test_a_late_event_in_the_cohort_month_reaches_the_ttm_of_a_year_later(worked, db_url):
    """g subscribed on 2025-01-25 (10 a month), reported late: the rerun of the days from then on
    (what the late-data sensor asks for) puts g in the cohort of January 2026."""
    with worked.begin() as conn:
        add_event(conn, "t1", "subscription_started", "2025-01-25 09:00", "g", subscription_id="g1", amount=10, **MONTH)
    assert materialize_range(ASSETS, db_url, "2025-01-25", "2026-01-31", selection=["revenue_aggregates"]).success
    with worked.connect() as conn:
        january = kpis(conn, "month", "2026-01-01")
    # Cohort a 100, b 80, c 40, g 10 (230); now a 150, b 0, c 60, g 10.
    assert fraction(january["ttm_nrr"]) == round(Fraction(220, 230), 15)
    assert fraction(january["ttm_grr"]) == round(Fraction(150, 230), 15)
    assert january["active_customers"] == 4
