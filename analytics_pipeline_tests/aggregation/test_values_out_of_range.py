"""A value that even NUMERIC(18,2) cannot hold (|value| >= 10^16 once rounded to cents) keeps
only its own tenant's window out of the write: every other tenant is written as in a clean run,
the tenant's old rows stay as they were, the ERROR check `values_fit_columns` names tenant,
period, column and value, and the run succeeds (docs/operations.md#values-out-of-range). Every
expected value is worked out with Decimal in the test, never read from the code under test."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import dagster as dg
import pytest
import sqlalchemy as sa

from analytics_pipeline.aggregation.bounds import ComputedRows, hold_back_out_of_range
from analytics_pipeline.aggregation.checks import VALUES_FIT_COLUMNS_CHECK
from analytics_pipeline.cohorts.assets import user_cohorts
from analytics_pipeline.core.resources import pipeline_resources
from analytics_pipeline.revenue.assets import payment_history, revenue_aggregates, subscription_history
from analytics_pipeline.tournaments.assets import tournament_aggregates

from ..helpers import add_tenant, event, insert_events, materialize_range, rows

D = Decimal
DAY = "2025-03-03"  # a Monday
LARGEST = D("9999999999999999.99")  # the largest value NUMERIC(18,2) holds
AMOUNT_BOUND = D("99999999999.99")  # the largest amount the contract accepts (< 10^11)

AGGREGATES = {
    "revenue_aggregates": "tenant_id, period_type, period_start",
    "tournament_aggregates": "tenant_id, period_type, period_start",
    "user_cohorts": "tenant_id, cohort_month, month_number",
}


@pytest.fixture(autouse=True)
def keep_raw_events_forever(monkeypatch):
    # The hand-built histories lie in 2025; keep them inside the retention window.
    monkeypatch.setenv("ANALYTICS_RETENTION_MONTHS", "240")


def _snapshot(engine, table: str, tenants: list[str], into: str) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE TABLE {into} AS SELECT * FROM {table} WHERE tenant_id = ANY(:t)"), {"t": tenants})


def _differ(engine, table: str, reference: str, tenants: list[str], with_updated_at: bool = False) -> int:
    """Rows of `tenants` in `table` and `reference` that are not in the other (EXCEPT ALL both
    ways); updated_at is compared only when asked (a clean run writes it again)."""
    with engine.connect() as conn:
        columns = ", ".join(
            c for c in conn.execute(
                sa.text("SELECT column_name FROM information_schema.columns WHERE table_name = :t ORDER BY ordinal_position"),
                {"t": table},
            ).scalars()
            if with_updated_at or c != "updated_at"
        )
        total = 0
        for first, second in ((table, reference), (reference, table)):
            total += conn.execute(
                sa.text(
                    f"SELECT count(*) FROM (SELECT {columns} FROM {first} WHERE tenant_id = ANY(:t) "
                    f"EXCEPT ALL SELECT {columns} FROM {second} WHERE tenant_id = ANY(:t)) AS d"
                ),
                {"t": tenants},
            ).scalar()
        return total


def _count(engine, table: str, tenant: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text(f"SELECT count(*) FROM {table} WHERE tenant_id = :t"), {"t": tenant}).scalar()


def _check(result, asset: str):
    (found,) = [c for c in result.get_asset_check_evaluations()
                if c.check_name == VALUES_FIT_COLUMNS_CHECK and c.asset_key == dg.AssetKey(asset)]
    return found


def _metadata(result, asset: str) -> dict:
    # A run over a range of partitions reports the same metadata for each.
    materialization = result.asset_materializations_for_node(asset)[0]
    return {k: v.value for k, v in materialization.metadata.items()}


def _payments_at_bound(engine, tenant: str, payments: int, last_amount: Decimal) -> None:
    """`payments` payments at the contract's bound and one of `last_amount`, all by user u1 for
    tournament T on DAY, inserted set-based (a hundred thousand rows)."""
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                """
                INSERT INTO analytics_events (id, tenant_id, event_type, event_data, user_id, "timestamp", created_at)
                SELECT :tenant || '-pay-' || n, :tenant, 'payment_completed',
                       jsonb_build_object('payment_id', 'p' || n, 'tournament_id', 'T',
                                          'amount', CASE WHEN n = 0 THEN :last ELSE :bound END),
                       'u1', CAST(:day AS timestamp) + interval '12 hours', now() AT TIME ZONE 'UTC'
                FROM generate_series(0, :payments) AS n
                """
            ),
            {"tenant": tenant, "last": str(last_amount), "bound": str(AMOUNT_BOUND), "day": DAY, "payments": payments},
        )


def _tournament_and_signup(engine, tenant: str) -> None:
    insert_events(engine, [
        event("user_signup", f"{DAY} 09:00", "u1"),
        event("tournament_created", f"{DAY} 09:00", tournament_id="T", format="swiss"),
    ], tenant_id=tenant)


def _materialize_all(db_url):
    """revenue_aggregates and tournament_aggregates over DAY, user_cohorts over its month."""
    daily = materialize_range(
        [subscription_history, payment_history, revenue_aggregates, tournament_aggregates], db_url, DAY, DAY,
        selection=["revenue_aggregates", "tournament_aggregates"],
    )
    monthly = dg.materialize(
        [user_cohorts], partition_key="2025-03-01", resources=pipeline_resources(db_url)
    )
    return daily, monthly


def test_the_largest_storable_amount_is_written_and_one_cent_more_holds_only_its_tenant_back(db_url, engine):
    # 100,000 payments at the bound sum to 9,999,999,999,999,000.00; "edge" pays 999.99 more:
    # exactly the largest storable value, in its tournament's revenue, its day's total_revenue and
    # its cohort's revenue and LTV (a cohort of one). "over" pays 1,000.00 more: 10^16.
    at_bound = 100_000 * AMOUNT_BOUND
    assert at_bound + D("999.99") == LARGEST
    for tenant in ("edge", "over"):
        _tournament_and_signup(engine, tenant)
    _payments_at_bound(engine, "edge", 100_000, D("999.99"))
    # Before the overflow "over" holds the 100,000 payments at the bound alone, which fit.
    _payments_at_bound(engine, "over", 99_999, AMOUNT_BOUND)
    insert_events(engine, [
        event("user_signup", f"{DAY} 09:00", "u1"),
        event("tournament_created", f"{DAY} 09:00", tournament_id="T", format="swiss"),
        event("player_registered", f"{DAY} 10:00", "u1", tournament_id="T"),
        event("payment_completed", f"{DAY} 10:00", "u1", payment_id="p1", amount="25.50", tournament_id="T"),
    ], tenant_id="small")

    daily, monthly = _materialize_all(db_url)
    assert daily.success and monthly.success
    good = ["edge", "small"]
    for table in AGGREGATES:
        _snapshot(engine, table, good, f"clean_{table}")
        _snapshot(engine, table, ["over"], f"old_{table}")
        assert _count(engine, f"old_{table}", "over") > 0
        # The next run has to write the good tenants again to match the clean run.
        with engine.begin() as conn:
            conn.execute(sa.text(f"DELETE FROM {table} WHERE tenant_id = ANY(:t)"), {"t": good})

    # One payment more for "over": 9,999,999,999,999,000.00 + 1,000.00 = 10^16.
    insert_events(engine, [
        event("payment_completed", f"{DAY} 13:00", "u1", payment_id="last", amount="1000.00", tournament_id="T"),
    ], tenant_id="over")
    daily, monthly = _materialize_all(db_url)
    assert daily.success and monthly.success

    for table in AGGREGATES:
        assert _differ(engine, table, f"clean_{table}", good) == 0, table
        assert _count(engine, table, "edge") > 0 and _count(engine, table, "small") > 0
        # Untouched, to the updated_at.
        assert _differ(engine, table, f"old_{table}", ["over"], with_updated_at=True) == 0, table

    with engine.connect() as conn:
        assert rows(conn, "SELECT revenue FROM tournament_aggregates WHERE tenant_id = 'edge' AND period_type = 'day'") == [
            {"revenue": LARGEST}
        ]
        assert rows(conn, "SELECT total_revenue FROM revenue_aggregates WHERE tenant_id = 'edge' AND period_type = 'year'") == [
            {"total_revenue": LARGEST}
        ]
        assert rows(conn, "SELECT revenue, ltv FROM user_cohorts WHERE tenant_id = 'edge'") == [
            {"revenue": LARGEST, "ltv": LARGEST}
        ]

    ten_to_16 = "10000000000000000.00"
    expected = {
        "tournament_aggregates": [f"tenant over, {p} {start}: revenue = {ten_to_16}" for p, start in (
            ("day", DAY), ("month", "2025-03-01"), ("quarter", "2025-01-01"), ("week", DAY), ("year", "2025-01-01"))],
        "revenue_aggregates": [f"tenant over, {p} {start}: total_revenue = {ten_to_16}" for p, start in (
            ("day", DAY), ("month", "2025-03-01"), ("quarter", "2025-01-01"), ("week", DAY), ("year", "2025-01-01"))],
        "user_cohorts": [f"tenant over, cohort 2025-03 month 0: {c} = {ten_to_16}" for c in ("ltv", "revenue")],
    }
    for result in (daily, monthly):
        # The old rows of "over" are left out of the rule checks: the run wrote none of them.
        assert {c.check_name for c in result.get_asset_check_evaluations() if not c.passed} == {VALUES_FIT_COLUMNS_CHECK}
    for result, asset in ((daily, "tournament_aggregates"), (daily, "revenue_aggregates"), (monthly, "user_cohorts")):
        check = _check(result, asset)
        assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
        assert check.metadata["examples"].value == expected[asset]
        metadata = _metadata(result, asset)
        assert metadata["tenants_not_written"] == ["over"]
        assert metadata["values_out_of_range"] == len(expected[asset])
        assert {e["column"] for e in metadata["values_out_of_range_examples"]} == {
            "tournament_aggregates": {"revenue"}, "revenue_aggregates": {"total_revenue"},
            "user_cohorts": {"revenue", "ltv"},
        }[asset]


def test_an_arr_past_the_columns_holds_its_tenant_back_until_the_data_is_corrected(db_url, engine):
    weekly = dict(plan_id="pro_week", interval="week", amount=str(AMOUNT_BOUND))
    # Monthly value of a weekly subscription at the bound: 99,999,999,999.99 x 52 / 12 to the cent.
    monthly_value = (AMOUNT_BOUND * 52 / 12).quantize(D("0.01"))
    assert monthly_value == D("433333333333.29")
    insert_events(engine, [
        event("subscription_started", f"{DAY} 10:00", "c0", subscription_id="s0", **weekly),
    ], tenant_id="big")
    insert_events(engine, [
        event("subscription_started", f"{DAY} 10:00", "c1", subscription_id="s1", amount="49.00",
              plan_id="pro", interval="month"),
        event("payment_completed", f"{DAY} 11:00", "c1", payment_id="p1", amount="49.00"),
    ], tenant_id="fine")

    def run():
        result = materialize_range(
            [subscription_history, payment_history, revenue_aggregates], db_url, DAY, "2025-03-04",
            selection=["revenue_aggregates"],
        )
        assert result.success
        return result

    run()
    _snapshot(engine, "revenue_aggregates", ["fine"], "clean_revenue_aggregates")
    _snapshot(engine, "revenue_aggregates", ["big"], "old_revenue_aggregates")
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM revenue_aggregates WHERE tenant_id = 'fine'"))

    # 2,000 such subscriptions: MRR 866,666,666,666,580.00 fits, ARR 10,399,999,999,998,960.00 not.
    insert_events(engine, [
        event("subscription_started", f"{DAY} 10:00", f"c{n}", subscription_id=f"s{n}", **weekly)
        for n in range(1, 2000)
    ], tenant_id="big")
    arr = 2000 * monthly_value * 12
    assert arr == D("10399999999998960.00")
    result = run()

    assert _differ(engine, "revenue_aggregates", "clean_revenue_aggregates", ["fine"]) == 0
    assert _count(engine, "revenue_aggregates", "fine") > 0
    assert _differ(engine, "revenue_aggregates", "old_revenue_aggregates", ["big"], with_updated_at=True) == 0
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    # The rows of "big" are old, the others written as in a clean run: every rule check passes.
    assert [name for name, c in checks.items() if not c.passed] == [VALUES_FIT_COLUMNS_CHECK]
    check = checks[VALUES_FIT_COLUMNS_CHECK]
    # Every row of the window of "big" carries that ARR: both days, and the periods containing them.
    assert check.metadata["examples"].value == [
        f"tenant big, {p}: arr = {arr}" for p in (
            "day 2025-03-03", "day 2025-03-04", "month 2025-03-01", "quarter 2025-01-01", "week 2025-03-03",
            "year 2025-01-01")
    ]
    assert _metadata(result, "revenue_aggregates")["tenants_not_written"] == ["big"]

    # Corrected: 1,000 of the subscriptions were cancelled the same day (each customer's MRR is
    # 0 before and after that day: no movement). MRR 433,333,333,333,290.00, ARR x 12.
    insert_events(engine, [
        event("subscription_cancelled", f"{DAY} 12:00", f"c{n}", subscription_id=f"s{n}") for n in range(1000, 2000)
    ], tenant_id="big")
    result = run()
    assert _check(result, "revenue_aggregates").passed
    assert _metadata(result, "revenue_aggregates")["tenants_not_written"] == []
    with engine.connect() as conn:
        stored = rows(
            conn,
            "SELECT period_type, mrr, arr FROM revenue_aggregates WHERE tenant_id = 'big' ORDER BY period_type, period_start",
        )
    mrr = 1000 * monthly_value
    assert stored == [
        {"period_type": p, "mrr": mrr, "arr": mrr * 12}
        for p in ("day", "day", "month", "quarter", "week", "year")
    ]
    assert _differ(engine, "revenue_aggregates", "clean_revenue_aggregates", ["fine"]) == 0


def test_the_computed_rows_are_not_cast_before_the_bounds_are_checked(db_url, engine):
    # A cast to the column types in the computation would fail (or round) before the check sees the
    # value; the temporary tables must carry plain numeric and bigint.
    from analytics_pipeline.cohorts.assets import COHORT_ROWS, compute_cohort_rows
    from analytics_pipeline.revenue.assets import REVENUE_ROWS, compute_revenue_rows
    from analytics_pipeline.tournaments.assets import TOURNAMENT_ROWS, compute_tournament_rows

    params = {"window_start": dt.date(2025, 3, 1), "window_end": dt.date(2025, 4, 1)}
    with engine.connect() as conn:  # closed without commit
        for compute, computed in (
            (compute_revenue_rows, REVENUE_ROWS),
            (compute_tournament_rows, (TOURNAMENT_ROWS,)),
            (compute_cohort_rows, (COHORT_ROWS,)),
        ):
            compute(conn, params)
            for source in computed:
                types = dict(conn.execute(sa.text(
                    "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                    "WHERE attrelid = CAST(:t AS regclass) AND attnum > 0"
                ), {"t": f"pg_temp.{source.table}"}).all())
                for column, _, _ in source.values:
                    if column == "arr":
                        continue  # computed from mrr
                    assert types[column] in ("numeric", "bigint"), (source.table, column, types[column])


def test_a_tenant_mrr_past_the_columns_is_absorbed_exactly_and_held_back_by_the_aggregate(db_url, engine):
    """The MRR state keeps sums no aggregate column holds (unbounded NUMERIC): the absorb goes
    on for every tenant, and only the aggregate holds the tenant back."""
    monthly_value = (AMOUNT_BOUND * 52 / 12).quantize(D("0.01"))
    subscriptions = 23_100  # MRR 10,009,999,999,999,999.00: past 10^16
    mrr = subscriptions * monthly_value
    assert mrr >= D("1e16")
    with engine.begin() as conn:
        add_tenant(conn, "big")
        conn.execute(sa.text(
            "INSERT INTO users (id, tenant_id) SELECT 'big-c' || n, 'big' FROM generate_series(1, :n) AS n"
        ), {"n": subscriptions})
        conn.execute(sa.text(
            """
            INSERT INTO analytics_events (id, tenant_id, event_type, event_data, user_id, "timestamp", created_at)
            SELECT 'big-sub-' || n, 'big', 'subscription_started',
                   jsonb_build_object('subscription_id', 's' || n, 'plan_id', 'pro_week', 'interval', 'week',
                                      'amount', CAST(:bound AS text)),
                   'big-c' || n, CAST(:day AS timestamp) + interval '10 hours', now() AT TIME ZONE 'UTC'
            FROM generate_series(1, :n) AS n
            """
        ), {"bound": str(AMOUNT_BOUND), "day": DAY, "n": subscriptions})
    insert_events(engine, [
        event("subscription_started", f"{DAY} 10:00", "c1", subscription_id="s1", amount="49.00",
              plan_id="pro", interval="month"),
    ], tenant_id="fine")

    result = materialize_range(
        [subscription_history, payment_history, revenue_aggregates], db_url, DAY, DAY,
        selection=["revenue_aggregates"],
    )
    assert result.success
    with engine.connect() as conn:
        state = rows(conn, "SELECT tenant_id, mrr, new_revenue FROM tenant_mrr_days ORDER BY tenant_id")
        stored = rows(conn, "SELECT tenant_id, period_type, mrr FROM revenue_aggregates ORDER BY 1, 2")
    assert state == [
        {"tenant_id": "big", "mrr": mrr, "new_revenue": mrr},
        {"tenant_id": "fine", "mrr": D("49.00"), "new_revenue": D("49.00")},
    ]
    assert {r["tenant_id"] for r in stored} == {"fine"} and len(stored) == 5
    assert _metadata(result, "revenue_aggregates")["tenants_not_written"] == ["big"]
    assert f"tenant big, day {DAY}: mrr = {mrr}" in _check(result, "revenue_aggregates").metadata["examples"].value


@pytest.mark.parametrize(
    ("column_type", "bound", "value", "held"),
    [
        # Money: |round(v, 2)| < 10^16 fits (docs/metrics.md#money-columns), on both sides.
        ("numeric", 10**16, "9999999999999999.994", False),  # rounds to ...99.99
        ("numeric", 10**16, "9999999999999999.995", True),  # rounds up to the bound
        ("numeric", 10**16, "10000000000000000", True),
        ("numeric", 10**16, "-9999999999999999.994", False),
        ("numeric", 10**16, "-9999999999999999.995", True),
        ("numeric", 10**16, "NaN", True),
        ("numeric", 10**16, "0", False),
        # Counts computed as bigint, an INTEGER column: |v| < 2^31.
        ("bigint", 2**31, str(2**31 - 1), False),
        ("bigint", 2**31, str(2**31), True),
        ("bigint", 2**31, str(-(2**31) + 1), False),
        ("bigint", 2**31, str(-(2**31)), True),
        # The most negative value of its own type, whose abs() would fail.
        ("integer", 2**31, str(-(2**31)), True),
        ("bigint", 2**31, str(-(2**63)), True),
    ],
)
def test_a_value_is_held_back_exactly_when_its_rounded_magnitude_reaches_its_bound(
    engine, column_type, bound, value, held
):
    """The statement of bounds.hold_back_out_of_range on one computed value at and just past its
    bound, of each type the runs compute, beside a row that fits."""
    source = ComputedRows("computed_at_bound", "r.period", (("amount", "r.amount", bound),))
    with engine.begin() as conn:
        conn.execute(sa.text(
            f"CREATE TEMP TABLE computed_at_bound (tenant_id text, period text, amount {column_type}) ON COMMIT DROP"
        ))
        conn.execute(
            sa.text(f"INSERT INTO computed_at_bound VALUES ('edge', 'day', CAST(:value AS {column_type})), "
                    "('fine', 'day', 1)"),
            {"value": value},
        )
        result = hold_back_out_of_range(conn, (source,))
        left = set(conn.execute(sa.text("SELECT tenant_id FROM computed_at_bound")).scalars())
    assert result.tenants == (("edge",) if held else ())
    assert left == ({"fine"} if held else {"edge", "fine"})
