"""revenue_aggregates on small hand-built event sets; expected rows are worked out by hand in
the comments, and a second, day-by-day implementation in pandas checks a random history."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import pandas as pd
import pytest
import sqlalchemy as sa

from analytics_pipeline.revenue.assets import revenue_aggregates, subscription_history

from ..helpers import add_event, materialize_range, rows, run_concurrently

ASSETS = [subscription_history, revenue_aggregates]
COLUMNS = (
    "period_end, mrr, arr, new_revenue, reactivation_revenue, expansion_revenue, "
    "contraction_revenue, churned_revenue, total_revenue, payment_count, payment_success_count, "
    "refund_count, refund_amount"
)


@pytest.fixture(autouse=True)
def keep_raw_events_forever(monkeypatch):
    # The hand-built histories lie in 2024-2025; keep them inside the retention window.
    monkeypatch.setenv("ANALYTICS_RETENTION_MONTHS", "240")


def run(db_url, start, end, **kwargs):
    result = materialize_range(ASSETS, db_url, start, end, selection=["revenue_aggregates"], **kwargs)
    assert result.success
    return result


def period(conn, tenant, period_type, start):
    found = rows(
        conn,
        f"SELECT {COLUMNS} FROM revenue_aggregates WHERE tenant_id = :t AND period_type = :p AND period_start = :s",
        t=tenant, p=period_type, s=start,
    )
    return found[0] if found else None


def expected(period_end, mrr, new=0, reactivation=0, expansion=0, contraction=0, churned=0,
             revenue=0, attempts=0, successes=0, refunds=0, refunded=0):
    d = Decimal
    return {
        "period_end": dt.date.fromisoformat(period_end), "mrr": d(str(mrr)), "arr": d(str(mrr)) * 12,
        "new_revenue": d(str(new)), "reactivation_revenue": d(str(reactivation)),
        "expansion_revenue": d(str(expansion)), "contraction_revenue": d(str(contraction)),
        "churned_revenue": d(str(churned)), "total_revenue": d(str(revenue)),
        "payment_count": attempts, "payment_success_count": successes, "refund_count": refunds,
        "refund_amount": d(str(refunded)),
    }


def lifecycle(conn, tenant="t1"):
    """c1: start 10, upgrade to 25, downgrade to 20, cancel, re-subscribe at 30.
    c2: annual plan 120/year = 10/month. c3: start 50, then a price change and a cancellation on
    the same day (no expansion, churn of 50). c1 pays after a failed attempt and is refunded in a
    later month."""
    sub = dict(plan_id="basic", interval="month")
    add_event(conn, tenant, "subscription_started", "2025-01-05 08:00", "c3", subscription_id="s4", amount=50, **sub)
    add_event(conn, tenant, "subscription_started", "2025-01-10 10:00", "c1", subscription_id="s1", amount=10, **sub)
    add_event(conn, tenant, "subscription_started", "2025-01-15 10:00", "c2", subscription_id="s3",
              plan_id="annual", amount="120.00", interval="year")
    add_event(conn, tenant, "subscription_changed", "2025-01-20 10:00", "c1", subscription_id="s1", amount=25, interval="month")
    add_event(conn, tenant, "subscription_changed", "2025-01-25 09:00", "c3", subscription_id="s4", amount=70, interval="month")
    add_event(conn, tenant, "subscription_cancelled", "2025-01-25 18:00", "c3", subscription_id="s4")
    add_event(conn, tenant, "subscription_changed", "2025-02-05 10:00", "c1", subscription_id="s1", amount=20, interval="month")
    add_event(conn, tenant, "subscription_cancelled", "2025-02-15 10:00", "c1", subscription_id="s1")
    add_event(conn, tenant, "subscription_started", "2025-03-01 10:00", "c1", subscription_id="s2", amount=30, **sub)
    add_event(conn, tenant, "payment_failed", "2025-01-10 10:00", "c1", payment_id="p1", amount=10, reason="card_declined")
    add_event(conn, tenant, "payment_completed", "2025-01-11 10:00", "c1", payment_id="p1", amount=10, subscription_id="s1")
    add_event(conn, tenant, "payment_refunded", "2025-02-03 10:00", "c1", payment_id="p1", amount=10)


def test_customer_lifecycle_by_hand(engine, db_url):
    with engine.begin() as conn:
        lifecycle(conn)
    run(db_url, "2025-01-01", "2025-03-31")
    with engine.connect() as conn:
        # MRR after each change: Jan 5: 50 (new 50); Jan 10: 60 (new 10); Jan 15: 70 (new 10);
        # Jan 20: 85 (expansion 15); Jan 25: 35 (churn 50); Feb 5: 30 (contraction 5);
        # Feb 15: 10 (churn 20); Mar 1: 40 (reactivation 30).
        assert period(conn, "t1", "month", "2025-01-01") == expected(
            "2025-01-31", 35, new=70, expansion=15, churned=50, revenue=10, attempts=2, successes=1)
        assert period(conn, "t1", "month", "2025-02-01") == expected(
            "2025-02-28", 10, contraction=5, churned=20, refunds=1, refunded=10)
        assert period(conn, "t1", "month", "2025-03-01") == expected("2025-03-31", 40, reactivation=30)
        assert period(conn, "t1", "quarter", "2025-01-01") == expected(
            "2025-03-31", 40, new=70, reactivation=30, expansion=15, contraction=5, churned=70,
            revenue=10, attempts=2, successes=1, refunds=1, refunded=10)
        # A running year: period_end is still its last day; mrr is the last computed day's.
        assert period(conn, "t1", "year", "2025-01-01")["period_end"] == dt.date(2025, 12, 31)
        assert period(conn, "t1", "year", "2025-01-01")["mrr"] == Decimal("40.00")
        # Same-day price change and cancellation: only the churn of the previous 50.
        assert period(conn, "t1", "day", "2025-01-25") == expected("2025-01-25", 35, churned=50)
        # The failed attempt and the retry that succeeded.
        assert period(conn, "t1", "day", "2025-01-10") == expected("2025-01-10", 60, new=10, attempts=1)
        assert period(conn, "t1", "day", "2025-01-11") == expected("2025-01-11", 60, revenue=10, attempts=1, successes=1)
        # A quiet day with MRR > 0 still has its row, without flows.
        assert period(conn, "t1", "day", "2025-03-20") == expected("2025-03-20", 40)
        # Before the first subscription there is no MRR and no row.
        assert period(conn, "t1", "day", "2025-01-04") is None


@pytest.mark.parametrize(
    "interval, amount, monthly",
    [("month", "19.99", "19.99"), ("quarter", "90", "30.00"), ("year", "100", "8.33"), ("week", "12", "52.00")],
)
def test_monthly_value_per_interval(engine, db_url, interval, amount, monthly):
    with engine.begin() as conn:
        add_event(conn, "t1", "subscription_started", "2025-06-02 12:00", "c1",
                  subscription_id="s", plan_id="p", amount=amount, interval=interval)
    run(db_url, "2025-06-02", "2025-06-02")
    with engine.connect() as conn:
        assert period(conn, "t1", "day", "2025-06-02")["mrr"] == Decimal(monthly)


def test_week_crossing_a_month_boundary_and_a_leap_day(engine, db_url):
    with engine.begin() as conn:
        add_event(conn, "t1", "payment_completed", "2025-01-30 12:00", "c1", payment_id="a", amount=5)
        add_event(conn, "t1", "payment_completed", "2025-02-01 12:00", "c1", payment_id="b", amount=7)
        add_event(conn, "t1", "payment_completed", "2024-02-29 23:59:59", "c1", payment_id="c", amount=3)
    run(db_url, "2025-01-27", "2025-02-02")
    run(db_url, "2024-02-29", "2024-02-29")
    with engine.connect() as conn:
        # ISO week Monday 2025-01-27 .. Sunday 2025-02-02 holds both payments.
        assert period(conn, "t1", "week", "2025-01-27") == expected(
            "2025-02-02", 0, revenue=12, attempts=2, successes=2)
        assert period(conn, "t1", "month", "2025-01-01")["total_revenue"] == Decimal(5)
        assert period(conn, "t1", "month", "2025-02-01")["total_revenue"] == Decimal(7)
        assert period(conn, "t1", "day", "2024-02-29")["total_revenue"] == Decimal(3)
        assert period(conn, "t1", "month", "2024-02-01")["period_end"] == dt.date(2024, 2, 29)
        assert period(conn, "t1", "quarter", "2024-01-01")["period_end"] == dt.date(2024, 3, 31)


MALFORMED = [
    ("payment_completed", {"payment_id": "x1", "amount": "abc"}, "c1"),
    ("payment_completed", {"payment_id": "x2", "amount": 0}, "c1"),
    ("payment_failed", {"amount": 5}, "c1"),
    ("payment_refunded", {"payment_id": "x3", "amount": -5}, "c1"),
    ("subscription_started", {"subscription_id": "s9", "plan_id": "p", "amount": 10, "interval": "month"}, None),
    ("subscription_started", {"subscription_id": "s9", "plan_id": "p", "amount": 10, "interval": "daily"}, "c1"),
    ("subscription_changed", {"subscription_id": "", "amount": 10, "interval": "month"}, "c1"),
    ("subscription_cancelled", {}, "c1"),
]


def test_malformed_events_are_skipped_counted_and_warned(engine, db_url):
    with engine.begin() as conn:
        lifecycle(conn)
    run(db_url, "2025-01-01", "2025-03-31")
    with engine.connect() as conn:
        clean = rows(conn, f"SELECT tenant_id, period_type, period_start, {COLUMNS} FROM revenue_aggregates ORDER BY 1, 2, 3")
    with engine.begin() as conn:
        for i, (event_type, data, user) in enumerate(MALFORMED):
            add_event(conn, "t1", event_type, f"2025-02-{10 + i:02d} 12:00", user, **data)
        conn.execute(sa.text("UPDATE analytics_events SET event_data = '[1, 2]' WHERE event_data->>'payment_id' = 'x1'"))
    result = run(db_url, "2025-01-01", "2025-03-31")
    with engine.connect() as conn:
        again = rows(conn, f"SELECT tenant_id, period_type, period_start, {COLUMNS} FROM revenue_aggregates ORDER BY 1, 2, 3")
    assert again == clean
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    warn = checks["no_malformed_events"]
    assert not warn.passed and warn.severity.value == "WARN"
    assert warn.metadata["malformed_events"].value == len(MALFORMED)
    assert all(c.passed for name, c in checks.items() if name != "no_malformed_events")
    metadata = next(m.metadata for m in result.asset_materializations_for_node("revenue_aggregates")
                    if m.asset_key.path == ["revenue_aggregates"])
    skipped = metadata["malformed_events_by_type"].data
    assert skipped == {"payment_completed": 2, "payment_failed": 1, "payment_refunded": 1,
                       "subscription_started": 2, "subscription_changed": 1, "subscription_cancelled": 1}


def snapshot(engine):
    with engine.connect() as conn:
        return rows(conn, f"SELECT id, tenant_id, period_type, period_start, {COLUMNS} FROM revenue_aggregates ORDER BY 2, 3, 4")


def test_running_twice_leaves_the_same_rows(engine, db_url):
    with engine.begin() as conn:
        lifecycle(conn)
    run(db_url, "2025-01-01", "2025-03-31")
    first = snapshot(engine)
    run(db_url, "2025-01-01", "2025-03-31")
    run(db_url, "2025-02-10", "2025-02-20")
    assert snapshot(engine) == first and first


def test_overlapping_concurrent_runs_leave_one_runs_rows(engine, db_url):
    with engine.begin() as conn:
        lifecycle(conn)
        lifecycle(conn, tenant="t2")
    run(db_url, "2025-01-01", "2025-03-31")
    reference = snapshot(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM revenue_aggregates"))
    ranges = [("2025-01-01", "2025-03-31"), ("2025-01-15", "2025-03-31"), ("2025-01-01", "2025-03-31")]
    results = [r if isinstance(r, Exception) else r.success
               for r in run_concurrently(lambda first, last: run(db_url, first, last), *ranges)]
    assert results == [True, True, True]
    assert snapshot(engine) == reference


def test_after_a_purge_recent_days_are_unchanged(engine, db_url, monkeypatch):
    """MRR of recent days comes from subscriptions that started long before the retention
    cutoff; the subscription history keeps them after their raw events are deleted."""
    today = dt.date.today()
    old = today - dt.timedelta(days=600)
    recent = today - dt.timedelta(days=3)
    with engine.begin() as conn:
        add_event(conn, "t1", "subscription_started", f"{old} 09:00", "c1",
                  subscription_id="s1", plan_id="p", amount=40, interval="month")
        add_event(conn, "t1", "subscription_started", f"{old} 10:00", "c2",
                  subscription_id="s2", plan_id="p", amount=10, interval="month")
        add_event(conn, "t1", "subscription_changed", f"{recent} 09:00", "c1",
                  subscription_id="s1", amount=50, interval="month")
        add_event(conn, "t1", "payment_completed", f"{recent} 09:05", "c1", payment_id="p", amount=50)
    monkeypatch.setenv("ANALYTICS_RETENTION_MONTHS", "13")
    window = (str(recent - dt.timedelta(days=2)), str(today))
    run(db_url, *window)
    before = snapshot(engine)
    with engine.begin() as conn:
        purged = conn.execute(sa.text("DELETE FROM analytics_events WHERE timestamp < :d"), {"d": today - dt.timedelta(days=400)}).rowcount
    assert purged == 2
    run(db_url, *window)
    assert snapshot(engine) == before
    with engine.connect() as conn:
        # 40 + 10 before, expansion of 10 on the recent day
        assert period(conn, "t1", "day", str(recent))["mrr"] == Decimal(60)
        assert period(conn, "t1", "day", str(recent))["expansion_revenue"] == Decimal(10)


def test_days_whose_payments_were_purged_are_recomputed_from_the_payment_history(engine, db_url):
    with engine.begin() as conn:
        lifecycle(conn)
    run(db_url, "2025-01-01", "2025-01-31")
    stored = snapshot(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM analytics_events WHERE event_type LIKE 'payment%'"))
    run(db_url, "2025-01-01", "2025-01-31")
    assert snapshot(engine) == stored
    with engine.connect() as conn:
        assert period(conn, "t1", "month", "2025-01-01")["total_revenue"] > Decimal(0)


# --- A second implementation: walk every day, keep each subscription's state in a dict ------

def reference_days(events: pd.DataFrame, start: dt.date, end: dt.date) -> pd.DataFrame:
    factor = {"month": Decimal(1), "quarter": Decimal(1) / 3, "year": Decimal(1) / 12, "week": Decimal(52) / 12}
    value: dict[tuple, Decimal] = {}
    had_mrr: set[str] = set()
    customer_prev: dict[str, Decimal] = {}
    out = []
    day = min(events["at"]).date()
    while day <= end:
        for e in events[events["at"].dt.date == day].sort_values(["at", "id"]).itertuples():
            key = (e.user, e.sub)
            if e.type == "subscription_started":
                value[key] = (Decimal(e.amount) * factor[e.interval]).quantize(Decimal("0.01"))
            elif e.type == "subscription_changed" and key in value:
                value[key] = (Decimal(e.amount) * factor[e.interval]).quantize(Decimal("0.01"))
            elif e.type == "subscription_cancelled":
                value.pop(key, None)
        customers = {u for u, _ in value} | set(customer_prev)
        moves = dict(new=Decimal(0), reactivation=Decimal(0), expansion=Decimal(0), contraction=Decimal(0), churned=Decimal(0))
        counts = dict(new_customers=0, reactivated_customers=0, churned_customers=0)
        for c in customers:
            now = sum((v for (u, _), v in value.items() if u == c), Decimal(0))
            before = customer_prev.get(c, Decimal(0))
            if before == 0 and now > 0:
                moves["reactivation" if c in had_mrr else "new"] += now
                counts["reactivated_customers" if c in had_mrr else "new_customers"] += 1
            elif before > 0 and now == 0:
                moves["churned"] += before
                counts["churned_customers"] += 1
            elif now > before:
                moves["expansion"] += now - before
            elif now < before:
                moves["contraction"] += before - now
            customer_prev[c] = now
            if now > 0:
                had_mrr.add(c)
        mrr = sum(value.values(), Decimal(0))
        active = sum(1 for v in customer_prev.values() if v > 0)
        if day >= start and (mrr > 0 or any(moves.values())):
            out.append({"day": day, "mrr": mrr, **moves, "active_customers": active, **counts})
        day += dt.timedelta(days=1)
    return pd.DataFrame(out)


def test_random_history_matches_a_day_by_day_reference(engine, db_url):
    rng = random.Random(7)
    records = []
    with engine.begin() as conn:
        for n in range(120):
            user = f"c{rng.randrange(8)}"
            sub = f"s{user}-{rng.randrange(2)}"
            kind = rng.choice(["subscription_started", "subscription_changed", "subscription_cancelled"])
            at = dt.datetime(2025, 1, 1) + dt.timedelta(minutes=rng.randrange(60 * 24 * 80))
            data = {"subscription_id": sub}
            if kind != "subscription_cancelled":
                data |= {"amount": str(rng.choice([5, 9.99, 20, 49, 120])),
                         "interval": rng.choice(["week", "month", "quarter", "year"])}
            if kind == "subscription_started":
                data["plan_id"] = "p"
            event_id = add_event(conn, "t1", kind, at, user, event_id=f"e{n:04d}", **data)
            records.append({"id": event_id, "type": kind, "at": at, "user": user, "sub": sub,
                            "amount": data.get("amount"), "interval": data.get("interval")})
    run(db_url, "2025-02-01", "2025-03-31")
    expected_days = reference_days(pd.DataFrame(records), dt.date(2025, 2, 1), dt.date(2025, 3, 31))
    with engine.connect() as conn:
        actual = pd.DataFrame(rows(conn, """
            SELECT period_start AS day, mrr, new_revenue AS new, reactivation_revenue AS reactivation,
                   expansion_revenue AS expansion, contraction_revenue AS contraction, churned_revenue AS churned,
                   active_customers, new_customers, reactivated_customers, churned_customers
            FROM revenue_aggregates WHERE period_type = 'day' ORDER BY period_start"""))
    assert len(expected_days) > 30
    # The history moves customers every way, so the counts are compared on something.
    assert expected_days[["new_customers", "reactivated_customers", "churned_customers"]].sum().min() > 0
    pd.testing.assert_frame_equal(actual.reset_index(drop=True), expected_days.reset_index(drop=True), check_dtype=False)
