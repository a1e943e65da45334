"""revenue_aggregates' week, month, quarter and year rows against a roll-up in pandas of the stored
day rows (docs/metrics.md#periods: flows summed, levels of the last computed day), after runs of
partial windows in an awkward order: an ISO week across a year end, quarters whose months are
computed by different runs, a quarter whose last month is still running, and late events that
leave later stored days behind the state (a period's row must still be its stored days' roll-up)."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import pandas as pd
import pytest

from analytics_pipeline.revenue.assets import revenue_aggregates, subscription_history

from ..helpers import add_event, materialize_range, rows

ASSETS = [subscription_history, revenue_aggregates]
FLOWS = (
    "new_revenue", "reactivation_revenue", "expansion_revenue", "contraction_revenue", "churned_revenue",
    "total_revenue", "payment_count", "payment_success_count", "refund_count", "refund_amount",
    "new_customers", "reactivated_customers", "churned_customers",
)
LEVELS = ("mrr", "arr", "active_customers")
KEY = ["tenant_id", "period_type", "period_start"]


@pytest.fixture(autouse=True)
def keep_raw_events_forever(monkeypatch):
    monkeypatch.setenv("ANALYTICS_RETENTION_MONTHS", "240")


def run(db_url, start, end):
    assert materialize_range(ASSETS, db_url, start, end, selection=["revenue_aggregates"]).success


def period_start(period_type: str, day: dt.date) -> dt.date:
    if period_type == "week":
        return day - dt.timedelta(days=day.weekday())
    if period_type == "month":
        return day.replace(day=1)
    if period_type == "quarter":
        return day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
    return day.replace(month=1, day=1)


def period_end(period_type: str, start: dt.date) -> dt.date:
    if period_type == "week":
        return start + dt.timedelta(days=6)
    months = {"month": 1, "quarter": 3, "year": 12}[period_type]
    year, month = divmod(start.month - 1 + months, 12)
    return dt.date(start.year + year, month + 1, 1) - dt.timedelta(days=1)


def rolled_up_days(days: pd.DataFrame) -> pd.DataFrame:
    """Every period containing a stored day row, from those rows alone: a day at a time into its
    week, month, quarter and year."""
    out = []
    for period_type in ("week", "month", "quarter", "year"):
        keyed = days.assign(
            period_type=period_type, period_start=[period_start(period_type, d) for d in days["period_start"]]
        ).sort_values("day")
        grouped = keyed.groupby(KEY, sort=True)
        frame = grouped[list(FLOWS)].sum().join(grouped[list(LEVELS)].last()).reset_index()
        frame["period_end"] = [period_end(period_type, s) for s in frame["period_start"]]
        out.append(frame)
    return pd.concat(out).sort_values(KEY).reset_index(drop=True)


def stored(engine):
    columns = ", ".join(("tenant_id", "period_type", "period_start", "period_end") + LEVELS + FLOWS)
    with engine.connect() as conn:
        table = pd.DataFrame(rows(conn, f"SELECT {columns} FROM revenue_aggregates ORDER BY 1, 2, 3"))
    days = table[table["period_type"] == "day"].assign(day=lambda f: f["period_start"])
    periods = table[table["period_type"] != "day"].sort_values(KEY).reset_index(drop=True)
    return days, periods


def assert_periods_roll_up_their_days(engine):
    days, periods = stored(engine)
    expected = rolled_up_days(days)
    pd.testing.assert_frame_equal(periods[expected.columns], expected, check_dtype=False)
    return days, periods


def random_history(conn, rng: random.Random, first: dt.datetime, days: int, tenants=("t1", "t2"), prefix="e"):
    for n in range(160):
        tenant = rng.choice(tenants)
        user = f"c{rng.randrange(7)}"
        sub = f"s{user}-{rng.randrange(2)}"
        at = first + dt.timedelta(minutes=rng.randrange(60 * 24 * days))
        kind = rng.choice(["subscription_started"] * 3 + ["subscription_changed"] * 2 + ["subscription_cancelled",
                          "payment_completed", "payment_failed", "payment_refunded"])
        data: dict = {}
        if kind.startswith("subscription"):
            data["subscription_id"] = sub
            if kind != "subscription_cancelled":
                data |= {"amount": str(rng.choice([5, 9.99, 20, 49, 120])),
                         "interval": rng.choice(["week", "month", "quarter", "year"])}
            if kind == "subscription_started":
                data["plan_id"] = "p"
        else:
            data = {"payment_id": f"p{rng.randrange(60)}", "amount": str(rng.choice([3, 12.5, 40]))}
        add_event(conn, tenant, kind, at, user, event_id=f"{prefix}{n:04d}", **data)


def test_period_rows_are_the_roll_up_of_the_stored_days_after_partial_runs(engine, db_url):
    rng = random.Random(25)
    with engine.begin() as conn:
        random_history(conn, rng, dt.datetime(2024, 10, 1), 220)
    # Mid-January first: the quarter and year have none of their other months yet.
    run(db_url, "2025-01-06", "2025-01-20")
    assert_periods_roll_up_their_days(engine)
    # The ISO week 2024-12-30..2025-01-05 across the year end: Q4 2024, Q1 2025, both years.
    run(db_url, "2024-12-29", "2025-01-02")
    assert_periods_roll_up_their_days(engine)
    # Across a quarter's end: Q1's March from this run, its January from the stored month row.
    run(db_url, "2025-03-25", "2025-04-03")
    assert_periods_roll_up_their_days(engine)
    run(db_url, "2024-10-01", "2024-11-30")
    assert_periods_roll_up_their_days(engine)
    # Late events in November and February: the runs of single days leave the stored days after
    # them behind the state; their months, quarters and years still add up the stored days.
    with engine.begin() as conn:
        random_history(conn, rng, dt.datetime(2024, 11, 10), 5, prefix="late-nov")
        random_history(conn, rng, dt.datetime(2025, 2, 11), 3, prefix="late-feb")
    run(db_url, "2024-11-12", "2024-11-12")
    assert_periods_roll_up_their_days(engine)
    run(db_url, "2025-02-12", "2025-02-12")
    assert_periods_roll_up_their_days(engine)
    # The last day of the history alone: Q2 2025 and the year still running, May partly computed.
    run(db_url, "2025-05-08", "2025-05-08")
    days, periods = assert_periods_roll_up_their_days(engine)

    # The comparison is on something: both tenants, every period type, quarters made of months
    # of different runs, and flows and levels that move.
    assert set(days["tenant_id"]) == {"t1", "t2"}
    assert set(periods["period_type"]) == {"week", "month", "quarter", "year"}
    quarters = periods[(periods["period_type"] == "quarter") & (periods["period_start"] == dt.date(2025, 1, 1))]
    assert len(quarters) == 2 and (quarters["total_revenue"] > 0).all() and (quarters["churned_revenue"] > 0).any()
    assert (periods["mrr"] > 0).sum() > 20 and (periods["refund_count"] > 0).any()
    # A week of two years holds the days of both.
    week = days[(days["day"] >= dt.date(2024, 12, 30)) & (days["day"] <= dt.date(2025, 1, 5))]
    assert {d.year for d in week["day"]} == {2024, 2025}


def test_a_quarter_from_months_of_different_runs_by_hand(engine, db_url):
    """Q1 2025, its months computed by three runs, the last still partial."""
    with engine.begin() as conn:
        add_event(conn, "t1", "subscription_started", "2025-01-10 10:00", "c1",
                  subscription_id="s1", plan_id="p", amount=10, interval="month")
        add_event(conn, "t1", "payment_completed", "2025-01-10 10:05", "c1", payment_id="a", amount=10)
        add_event(conn, "t1", "subscription_changed", "2025-02-14 10:00", "c1",
                  subscription_id="s1", amount=25, interval="month")
        add_event(conn, "t1", "subscription_started", "2025-03-03 10:00", "c2",
                  subscription_id="s2", plan_id="p", amount=40, interval="month")
        add_event(conn, "t1", "payment_completed", "2025-03-03 10:05", "c2", payment_id="b", amount=40)
    run(db_url, "2025-01-01", "2025-01-31")
    run(db_url, "2025-03-01", "2025-03-05")
    run(db_url, "2025-02-01", "2025-02-28")
    with engine.connect() as conn:
        quarter = rows(conn, "SELECT period_end, mrr, arr, new_revenue, expansion_revenue, total_revenue, "
                             "payment_count, active_customers, new_customers FROM revenue_aggregates "
                             "WHERE period_type = 'quarter' AND period_start = '2025-01-01'")
        year = rows(conn, "SELECT period_end, mrr FROM revenue_aggregates WHERE period_type = 'year'")
    # Jan 10: new 10 (MRR 10); Feb 14: expansion 15 (25); Mar 3: new 40 (65). The last computed
    # day is March 5 (MRR 65, two customers); payments 10 + 40.
    assert quarter == [{
        "period_end": dt.date(2025, 3, 31), "mrr": Decimal("65.00"), "arr": Decimal("780.00"),
        "new_revenue": Decimal("50.00"), "expansion_revenue": Decimal("15.00"),
        "total_revenue": Decimal("50.00"), "payment_count": 2, "active_customers": 2, "new_customers": 2,
    }]
    assert year == [{"period_end": dt.date(2025, 12, 31), "mrr": Decimal("65.00")}]
