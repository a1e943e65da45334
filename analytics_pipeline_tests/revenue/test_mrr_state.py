"""The MRR state (customer_mrr_days, tenant_mrr_days; docs/metrics.md#mrr-state): a late
subscription event changes exactly the customer days it should, and no other customer's rows are
rewritten. Expected rows are worked out by hand in the comments."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from analytics_pipeline.core import db, migrate
from analytics_pipeline.revenue.assets import revenue_aggregates, subscription_history

from ..helpers import add_event, materialize_range, rows

ASSETS = [subscription_history, revenue_aggregates]
MONTHLY = dict(plan_id="basic", interval="month")


@pytest.fixture(autouse=True)
def keep_raw_events_forever(monkeypatch):
    monkeypatch.setenv("ANALYTICS_RETENTION_MONTHS", "240")


def run(db_url, start, end):
    result = materialize_range(ASSETS, db_url, start, end, selection=["revenue_aggregates"])
    assert result.success
    assert all(c.passed for c in result.get_asset_check_evaluations() if c.check_name != "no_malformed_events")


def customer_days(conn) -> dict[tuple, tuple]:
    """(user, day) -> (mrr, new, reactivation, expansion, contraction, churned, xmin)."""
    return {
        (r["user_id"], str(r["day"])): (
            *(float(r[c]) for c in ("mrr", "new_revenue", "reactivation_revenue", "expansion_revenue",
                                    "contraction_revenue", "churned_revenue")),
            r["xmin"],
        )
        for r in rows(conn, "SELECT *, xmin::text AS xmin FROM customer_mrr_days WHERE tenant_id = 't1'")
    }


def tenant_days(conn) -> dict[str, tuple]:
    """day -> (mrr, new, reactivation, expansion, contraction, churned)."""
    return {
        str(r["day"]): tuple(float(r[c]) for c in ("mrr", "new_revenue", "reactivation_revenue",
                                                   "expansion_revenue", "contraction_revenue", "churned_revenue"))
        for r in rows(conn, "SELECT * FROM tenant_mrr_days WHERE tenant_id = 't1'")
    }


def values(days: dict) -> dict:
    return {k: v[:6] for k, v in days.items()}


def test_a_late_subscription_event_changes_exactly_its_customers_days(engine, db_url):
    absorbed_earlier = dt.datetime.now() - dt.timedelta(hours=3)
    with engine.begin() as conn:
        add_event(conn, "t1", "subscription_started", "2025-01-10 09:00", "c1", absorbed_earlier,
                  subscription_id="s1", amount=10, **MONTHLY)
        add_event(conn, "t1", "subscription_changed", "2025-03-01 09:00", "c1", absorbed_earlier,
                  subscription_id="s1", amount=30, interval="month")
        add_event(conn, "t1", "subscription_started", "2025-02-01 09:00", "c2", absorbed_earlier,
                  subscription_id="s3", amount=20, **MONTHLY)
    run(db_url, "2025-01-01", "2025-03-31")
    with engine.connect() as conn:
        before = customer_days(conn)
        # c1: new 10 on Jan 10, expansion 10 -> 30 on Mar 1; c2: new 20 on Feb 1.
        assert values(before) == {
            ("c1", "2025-01-10"): (10, 10, 0, 0, 0, 0),
            ("c1", "2025-03-01"): (30, 0, 0, 20, 0, 0),
            ("c2", "2025-02-01"): (20, 20, 0, 0, 0, 0),
        }
        assert tenant_days(conn) == {
            "2025-01-10": (10, 10, 0, 0, 0, 0),
            "2025-02-01": (30, 20, 0, 0, 0, 0),
            "2025-03-01": (50, 0, 0, 20, 0, 0),
        }

    # Recorded now for February: c1 cancels s1 on Feb 5 and starts s2 at 15 on Feb 20. The
    # price change of s1 on Mar 1 now changes a cancelled subscription and is ignored.
    with engine.begin() as conn:
        add_event(conn, "t1", "subscription_cancelled", "2025-02-05 12:00", "c1", subscription_id="s1")
        add_event(conn, "t1", "subscription_started", "2025-02-20 12:00", "c1",
                  subscription_id="s2", amount=15, **MONTHLY)
    # The days the late-data sensor requests: from the late events' first day on.
    run(db_url, "2025-02-05", "2025-03-31")
    with engine.connect() as conn:
        after = customer_days(conn)
        assert values(after) == {
            ("c1", "2025-01-10"): (10, 10, 0, 0, 0, 0),
            ("c1", "2025-02-05"): (0, 0, 0, 0, 0, 10),   # churn of 10
            ("c1", "2025-02-20"): (15, 0, 15, 0, 0, 0),  # had MRR before: reactivation
            ("c2", "2025-02-01"): (20, 20, 0, 0, 0, 0),
        }
        # Rows before the late events' first day, and every row of the other customer, were not
        # rewritten.
        assert after[("c1", "2025-01-10")][6] == before[("c1", "2025-01-10")][6]
        assert after[("c2", "2025-02-01")][6] == before[("c2", "2025-02-01")][6]
        assert tenant_days(conn) == {
            "2025-01-10": (10, 10, 0, 0, 0, 0),
            "2025-02-01": (30, 20, 0, 0, 0, 0),
            "2025-02-05": (20, 0, 0, 0, 0, 10),
            "2025-02-20": (35, 0, 15, 0, 0, 0),
        }
        # March opens at 35 and has no movement left.
        march = rows(conn, "SELECT period_start, mrr, expansion_revenue FROM revenue_aggregates "
                           "WHERE tenant_id = 't1' AND period_type = 'day' AND period_start IN ('2025-03-01', '2025-03-31') ORDER BY 1")
        assert march == [
            {"period_start": dt.date(2025, 3, 1), "mrr": Decimal("35.00"), "expansion_revenue": Decimal("0.00")},
            {"period_start": dt.date(2025, 3, 31), "mrr": Decimal("35.00"), "expansion_revenue": Decimal("0.00")},
        ]


def test_the_migration_builds_the_state_from_an_existing_history(engine, db_url):
    """A database upgraded to 0014 with subscription events already absorbed: the state built
    by the migration equals the one the absorb maintains."""
    with engine.begin() as conn:
        add_event(conn, "t1", "subscription_started", "2025-01-10 09:00", "c1", subscription_id="s1", amount=10, **MONTHLY)
        add_event(conn, "t1", "subscription_cancelled", "2025-01-20 09:00", "c1", subscription_id="s1")
        add_event(conn, "t1", "subscription_started", "2025-02-01 09:00", "c1", subscription_id="s2", amount=12, **MONTHLY)
    run(db_url, "2025-01-01", "2025-02-28")
    with engine.connect() as conn:
        maintained = values(customer_days(conn)), tenant_days(conn)
    db.dispose(db_url)
    migrate.downgrade(db_url, "0013_report_channels")  # drops the state's tables
    migrate.upgrade(db_url, "0014_customer_mrr_state")
    migrate.upgrade(db_url)
    with engine.connect() as conn:
        assert (values(customer_days(conn)), tenant_days(conn)) == maintained
    # new 10, churn 10, reactivation 12
    assert maintained[1] == {
        "2025-01-10": (10, 10, 0, 0, 0, 0),
        "2025-01-20": (0, 0, 0, 0, 0, 10),
        "2025-02-01": (12, 0, 12, 0, 0, 0),
    }
