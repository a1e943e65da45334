"""Amounts of currencies with many units per dollar (KRW, JPY, IDR, VND) pass 100,000,000 in a
period; the aggregates store them (NUMERIC(18,2), docs/metrics.md#money-columns). Every expected
value is worked out by hand in the comments."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import dagster as dg
import pytest

from analytics_pipeline.cohorts.assets import user_cohorts
from analytics_pipeline.core.resources import pipeline_resources
from analytics_pipeline.revenue.assets import revenue_aggregates, subscription_history
from analytics_pipeline.tournaments.assets import tournament_aggregates

from ..helpers import event, insert_events, materialize_range, rows

D = Decimal
MONDAY = dt.date(2025, 3, 3)


@pytest.fixture(autouse=True)
def keep_raw_events_forever(monkeypatch):
    # The hand-built histories lie in 2025; keep them inside the retention window.
    monkeypatch.setenv("ANALYTICS_RETENTION_MONTHS", "240")


def _period(engine, table, tenant, period_type, start, columns):
    with engine.connect() as conn:
        found = rows(
            conn,
            f"SELECT {columns} FROM {table} WHERE tenant_id = :t AND period_type = :p AND period_start = :s",
            t=tenant, p=period_type, s=start,
        )
    assert len(found) == 1, (table, tenant, period_type, start)
    return found[0]


def test_revenue_beyond_one_hundred_million(db_url, engine):
    monthly = dict(plan_id="pro", interval="month")
    # krw: a monthly subscription of 9,000,000: MRR 9,000,000, ARR 108,000,000; two payments of
    # 60,000,000 on Tuesday and Wednesday: 120,000,000 in the week and the month.
    insert_events(engine, [
        event("subscription_started", "2025-03-03 10:00", "c1", subscription_id="s1", amount=9_000_000, **monthly),
        event("payment_completed", "2025-03-04 10:00", "c1", payment_id="p1", amount=60_000_000),
        event("payment_completed", "2025-03-05 10:00", "c1", payment_id="p2", amount="60000000.00"),
    ], tenant_id="krw")
    # vnd: a weekly subscription of 99,999,999: monthly value 99,999,999 x 52 / 12 = 433,333,329
    # (5,199,999,948 / 12 is exact), ARR 5,199,999,948; one payment of 99,999,999.995, stored to
    # the cent: 100,000,000.00.
    insert_events(engine, [
        event("subscription_started", "2025-03-03 10:00", "c1", subscription_id="s1", amount=99_999_999,
              plan_id="pro_week", interval="week"),
        event("payment_completed", "2025-03-03 11:00", "c1", payment_id="p1", amount="99999999.995"),
    ], tenant_id="vnd")

    result = materialize_range(
        [subscription_history, revenue_aggregates], db_url, "2025-03-03", "2025-03-09",
        selection=["revenue_aggregates"],
    )
    assert result.success

    columns = "mrr, arr, new_revenue, total_revenue, payment_success_count"
    assert _period(engine, "revenue_aggregates", "krw", "day", MONDAY, columns) == {
        "mrr": D("9000000.00"), "arr": D("108000000.00"), "new_revenue": D("9000000.00"),
        "total_revenue": D("0.00"), "payment_success_count": 0,
    }
    for period_type, start in (("week", MONDAY), ("month", dt.date(2025, 3, 1))):
        assert _period(engine, "revenue_aggregates", "krw", period_type, start, columns) == {
            "mrr": D("9000000.00"), "arr": D("108000000.00"), "new_revenue": D("9000000.00"),
            "total_revenue": D("120000000.00"), "payment_success_count": 2,
        }
    assert _period(engine, "revenue_aggregates", "vnd", "day", MONDAY, columns) == {
        "mrr": D("433333329.00"), "arr": D("5199999948.00"), "new_revenue": D("433333329.00"),
        "total_revenue": D("100000000.00"), "payment_success_count": 1,
    }


def test_tournament_revenue_and_duration_beyond_one_hundred_million(db_url, engine):
    # T: created Monday, completed after 99,999,999.999 minutes (just under the contract's bound):
    # the average of one is 100,000,000.00 to the cent; two entry fees of 60,000,000 on Monday and
    # Tuesday belong to T's day: 120,000,000.
    insert_events(engine, [
        event("tournament_created", "2025-03-03 09:00", tournament_id="T", format="swiss"),
        event("tournament_completed", "2025-03-03 18:00", tournament_id="T", duration_minutes=99999999.999),
        event("payment_completed", "2025-03-03 10:00", "u1", payment_id="p1", amount=60_000_000, tournament_id="T"),
        event("payment_completed", "2025-03-04 10:00", "u2", payment_id="p2", amount=60_000_000, tournament_id="T"),
    ], tenant_id="jpy")
    result = materialize_range([tournament_aggregates], db_url, "2025-03-03", "2025-03-04")
    assert result.success
    columns = "tournament_count, completed_count, avg_duration_minutes, revenue"
    expected = {"tournament_count": 1, "completed_count": 1, "avg_duration_minutes": D("100000000.00"),
                "revenue": D("120000000.00")}
    assert _period(engine, "tournament_aggregates", "jpy", "day", MONDAY, columns) == expected
    assert _period(engine, "tournament_aggregates", "jpy", "week", MONDAY, columns) == expected


def test_cohort_revenue_beyond_one_hundred_million(db_url, engine):
    # u1 signs up in March and pays 60,000,000 twice that month: the cohort of one has revenue and
    # LTV 120,000,000 in month 0.
    insert_events(engine, [
        event("user_signup", "2025-03-03 09:00", "u1"),
        event("payment_completed", "2025-03-10 10:00", "u1", payment_id="p1", amount=60_000_000),
        event("payment_completed", "2025-03-20 10:00", "u1", payment_id="p2", amount=60_000_000),
    ], tenant_id="idr")
    result = dg.materialize(
        [user_cohorts], partition_key="2025-03-01", resources=pipeline_resources(db_url)
    )
    assert result.success
    with engine.connect() as conn:
        found = rows(conn, "SELECT cohort_month, month_number, cohort_size, revenue, ltv FROM user_cohorts")
    assert found == [{
        "cohort_month": dt.date(2025, 3, 1), "month_number": 0, "cohort_size": 1,
        "revenue": D("120000000.00"), "ltv": D("120000000.00"),
    }]
