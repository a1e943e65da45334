"""user_cohort_segments: a hand-worked triangle by first plan and by source, the identity with
user_cohorts and a pandas reference on random histories, its checks, a run of the segments alone
after late events (it brings user_cohorts up to the state it reads, holding that state), and
row-level security (docs/metrics.md#user_cohort_segments)."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

import dagster as dg
import pandas as pd
import pytest
import redis
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics_pipeline.cohorts.assets import (
    absorb_user_activity_months,
    touched_cohort_months,
    user_activity_months,
    user_cohorts,
    user_signups,
)
from analytics_pipeline.cohorts.segments import (
    RETENTION_RATE_BETWEEN_0_AND_1_CHECK,
    USER_COHORT_SEGMENTS_AGGREGATE,
    USER_COHORTS_BROUGHT_UP_TO_DATE,
    VALUES_ADD_UP_TO_USER_COHORTS_CHECK,
    user_cohort_segments,
)
from analytics_pipeline.core.cache_versions import version_key
from analytics_pipeline.core.db import tenant_scope
from analytics_pipeline.core.resources import pipeline_resources
from analytics_pipeline.revenue.assets import customer_sources, subscription_history

from ..api_support import redis_prefix, redis_server_url  # noqa: F401
from ..helpers import (
    add_event,
    committed_since,
    db_snapshot,
    materialize_beside_an_open_absorb,
    materialize_range,
    rows,
    table_rows,
)

ASSETS = [user_signups, user_activity_months, user_cohorts, user_cohort_segments]
COLUMNS = ("cohort_size", "retained_users", "retention_rate", "revenue", "ltv")
D = Decimal
JAN, FEB = dt.date(2025, 1, 1), dt.date(2025, 2, 1)


@pytest.fixture(autouse=True)
def keep_raw_events_forever(monkeypatch):
    monkeypatch.setenv("ANALYTICS_RETENTION_MONTHS", "240")


def run(db_url, first: str, last: str):
    """The segment state (the revenue domain's absorbs), then user_cohorts and user_cohort_segments
    for the months first..last in one run, as user_cohorts_job runs them; every check but the
    malformed-events WARN passes."""
    assert dg.materialize([subscription_history, customer_sources], resources=pipeline_resources(db_url)).success
    result = materialize_range(ASSETS, db_url, first, last, selection=["user_cohorts", "user_cohort_segments"])
    assert result.success
    assert failed_checks(result) == []
    # Run after user_cohorts, the segments find its rows up to date.
    assert brought_up_to_date(result) == 0
    return result


def failed_checks(result) -> list:
    return [(c.asset_key.to_user_string(), c.check_name, c.metadata.get("examples"))
            for c in result.get_asset_check_evaluations() if not c.passed and c.check_name != "no_malformed_events"]


def brought_up_to_date(result) -> int:
    # One materialization per partition of the range, all with the run's metadata.
    [value] = {m.metadata[USER_COHORTS_BROUGHT_UP_TO_DATE].value
               for m in result.asset_materializations_for_node("user_cohort_segments")}
    return value


def stored(conn, tenant: str = "t1") -> dict[tuple, tuple]:
    """(cohort_month, month_number, dimension, value) -> the row's columns."""
    return {
        (r["cohort_month"], r["month_number"], r["dimension"], r["value"]): tuple(r[c] for c in COLUMNS)
        for r in rows(conn, "SELECT * FROM user_cohort_segments WHERE tenant_id = :t", t=tenant)
    }


# --- By hand ------------------------------------------------------------------------------------

def _hand_events(conn) -> None:
    month = dict(interval="month")
    # u1: January, ads; first subscription basic, a second one on pro in March; pays 10 in February.
    add_event(conn, "t1", "user_signup", "2025-01-05 10:00", "u1", source="ads")
    add_event(conn, "t1", "subscription_started", "2025-01-06 10:00", "u1", subscription_id="s1", plan_id="basic",
              amount=10, **month)
    add_event(conn, "t1", "payment_completed", "2025-02-10 10:00", "u1", payment_id="p1", amount=10)
    add_event(conn, "t1", "subscription_started", "2025-03-01 10:00", "u1", subscription_id="s2", plan_id="pro",
              amount=30, **month)
    # u2: January, organic; subscribes to pro in February and pays 30 then; seen in March.
    add_event(conn, "t1", "user_signup", "2025-01-10 10:00", "u2", source="organic")
    add_event(conn, "t1", "subscription_started", "2025-02-03 10:00", "u2", subscription_id="s3", plan_id="pro",
              amount=30, **month)
    add_event(conn, "t1", "payment_completed", "2025-02-03 11:00", "u2", payment_id="p2", amount="30.00")
    add_event(conn, "t1", "page_view", "2025-03-05 10:00", "u2")
    # u3: January, a signup without source; never subscribes; seen in February.
    add_event(conn, "t1", "user_signup", "2025-01-15 10:00", "u3")
    add_event(conn, "t1", "page_view", "2025-02-20 10:00", "u3")
    # u4: January, ads; first subscription pro, a second on basic in March; pays 20 in March.
    add_event(conn, "t1", "user_signup", "2025-01-20 10:00", "u4", source="ads")
    add_event(conn, "t1", "subscription_started", "2025-03-03 10:00", "u4", subscription_id="s6", plan_id="basic",
              amount=10, **month)
    add_event(conn, "t1", "subscription_started", "2025-01-21 10:00", "u4", subscription_id="s4", plan_id="pro",
              amount=30, **month)
    add_event(conn, "t1", "payment_completed", "2025-03-02 10:00", "u4", payment_id="p3", amount=20)
    # u5: February, organic, basic; pays 15 in February.
    add_event(conn, "t1", "user_signup", "2025-02-02 10:00", "u5", source="organic")
    add_event(conn, "t1", "subscription_started", "2025-02-05 10:00", "u5", subscription_id="s5", plan_id="basic",
              amount=15, **month)
    add_event(conn, "t1", "payment_completed", "2025-02-05 11:00", "u5", payment_id="p4", amount=15)


# Activity (any valid event): u1 Jan Feb Mar, u2 Jan Feb Mar, u3 Jan Feb, u4 Jan Mar, u5 Feb Mar? no:
# u5 Feb only. Revenue: u1 Feb 10, u2 Feb 30, u4 Mar 20, u5 Feb 15.
# (cohort, m, dimension, value): (size, retained, rate, revenue, ltv)
HAND = {
    # first_plan, January: basic {u1}, pro {u2, u4}, (none) {u3}.
    (JAN, 0, "first_plan", "basic"): (1, 1, D("1"), D("0"), D("0")),
    (JAN, 1, "first_plan", "basic"): (1, 1, D("1"), D("10"), D("10")),
    (JAN, 2, "first_plan", "basic"): (1, 1, D("1"), D("0"), D("10")),
    (JAN, 0, "first_plan", "pro"): (2, 2, D("1"), D("0"), D("0")),
    (JAN, 1, "first_plan", "pro"): (2, 1, D("0.5"), D("30"), D("15")),  # u2; u4 not seen
    (JAN, 2, "first_plan", "pro"): (2, 2, D("1"), D("20"), D("25")),  # (30 + 20) / 2
    (JAN, 0, "first_plan", "(none)"): (1, 1, D("1"), D("0"), D("0")),
    (JAN, 1, "first_plan", "(none)"): (1, 1, D("1"), D("0"), D("0")),
    (JAN, 2, "first_plan", "(none)"): (1, 0, D("0"), D("0"), D("0")),
    # source, January: ads {u1, u4}, organic {u2}, (none) {u3}.
    (JAN, 0, "source", "ads"): (2, 2, D("1"), D("0"), D("0")),
    (JAN, 1, "source", "ads"): (2, 1, D("0.5"), D("10"), D("5")),
    (JAN, 2, "source", "ads"): (2, 2, D("1"), D("20"), D("15")),  # (10 + 20) / 2
    (JAN, 0, "source", "organic"): (1, 1, D("1"), D("0"), D("0")),
    (JAN, 1, "source", "organic"): (1, 1, D("1"), D("30"), D("30")),
    (JAN, 2, "source", "organic"): (1, 1, D("1"), D("0"), D("30")),
    (JAN, 0, "source", "(none)"): (1, 1, D("1"), D("0"), D("0")),
    (JAN, 1, "source", "(none)"): (1, 1, D("1"), D("0"), D("0")),
    (JAN, 2, "source", "(none)"): (1, 0, D("0"), D("0"), D("0")),
    # February: u5, basic and organic.
    (FEB, 0, "first_plan", "basic"): (1, 1, D("1"), D("15"), D("15")),
    (FEB, 1, "first_plan", "basic"): (1, 0, D("0"), D("0"), D("15")),
    (FEB, 0, "source", "organic"): (1, 1, D("1"), D("15"), D("15")),
    (FEB, 1, "source", "organic"): (1, 0, D("0"), D("0"), D("15")),
}


def test_hand_worked_triangle_by_first_plan_and_source(engine, db_url):
    with engine.begin() as conn:
        _hand_events(conn)
    result = run(db_url, "2025-01-01", "2025-03-01")
    with engine.connect() as conn:
        assert stored(conn) == HAND
        ids = {r["id"] for r in rows(conn, "SELECT id FROM user_cohort_segments")}
        # user_cohorts, January month 1: u1, u2, u3 of four; 40 of revenue (the values add up to it).
        assert rows(conn, "SELECT cohort_size, retained_users, revenue FROM user_cohorts "
                          "WHERE cohort_month = '2025-01-01' AND month_number = 1") == [
            {"cohort_size": 4, "retained_users": 3, "revenue": D("40.00")}]
    assert "t1:2025-01-01:2:first_plan:(none)" in ids
    metadata = result.asset_materializations_for_node("user_cohort_segments")[0].metadata
    assert metadata["rows_written"].value == len(HAND)


def test_a_month_rerun_changes_nothing_and_a_partition_writes_only_its_month(engine, db_url):
    with engine.begin() as conn:
        _hand_events(conn)
    run(db_url, "2025-01-01", "2025-03-01")
    run(db_url, "2025-02-01", "2025-02-01")
    with engine.connect() as conn:
        assert stored(conn) == HAND
        conn.execute(sa.text("DELETE FROM user_cohort_segments"))
        conn.commit()
    run(db_url, "2025-03-01", "2025-03-01")
    with engine.connect() as conn:
        assert stored(conn) == {k: v for k, v in HAND.items() if (k[0], k[1]) in ((JAN, 2), (FEB, 1))}


@pytest.mark.parametrize(
    "corruption, failing",
    [
        ("cohort_size = cohort_size + 1", {VALUES_ADD_UP_TO_USER_COHORTS_CHECK}),
        ("revenue = revenue + 1", {VALUES_ADD_UP_TO_USER_COHORTS_CHECK}),
        ("retained_users = cohort_size + 1", {VALUES_ADD_UP_TO_USER_COHORTS_CHECK,
                                              RETENTION_RATE_BETWEEN_0_AND_1_CHECK}),
        ("retention_rate = 1.5", {RETENTION_RATE_BETWEEN_0_AND_1_CHECK}),
    ],
)
def test_checks_name_the_row_that_breaks_them(engine, db_url, corruption, failing):
    with engine.begin() as conn:
        _hand_events(conn)
    run(db_url, "2025-01-01", "2025-03-01")
    with engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE user_cohort_segments SET {corruption} "
                             "WHERE id = 't1:2025-01-01:1:source:ads'"))
        results = USER_COHORT_SEGMENTS_AGGREGATE.check_stored_rows(conn, FEB, dt.date(2025, 3, 1))
    failed = {r.check_name: r for r in results if not r.passed and r.check_name != "no_malformed_events"}
    assert set(failed) == failing
    if VALUES_ADD_UP_TO_USER_COHORTS_CHECK in failed:
        assert "t1:2025-01-01:1:source" in str(failed[VALUES_ADD_UP_TO_USER_COHORTS_CHECK].metadata)
        assert "first_plan" not in str(failed[VALUES_ADD_UP_TO_USER_COHORTS_CHECK].metadata)


def test_rows_are_seen_only_by_their_tenant(engine, db_url):
    with engine.begin() as conn:
        for tenant in ("t1", "t2"):
            add_event(conn, tenant, "user_signup", "2025-01-05 10:00", f"{tenant}-u", source=f"{tenant}-ads")
    run(db_url, "2025-01-01", "2025-01-01")
    with engine.connect() as conn, conn.begin(), tenant_scope(conn, "t2") as scoped:
        seen = rows(scoped, "SELECT DISTINCT tenant_id, value FROM user_cohort_segments WHERE dimension = 'source'")
        assert seen == [{"tenant_id": "t2", "value": "t2-ads"}]
        assert rows(scoped, "SELECT count(*) AS n FROM user_cohort_segments WHERE tenant_id = 't1'") == [{"n": 0}]


def test_a_late_first_subscription_touches_every_month_from_its_users_cohort_on(engine, db_url):
    """It may move its user to another first_plan in every month of their cohort
    (docs/metrics.md#cohort-segments); a visit touches its own month only."""
    with engine.begin() as conn:
        add_event(conn, "t1", "user_signup", "2025-02-05 10:00", "u1", source="ads")
    run(db_url, "2025-02-01", "2025-02-01")
    since = db_snapshot(engine)
    with engine.begin() as conn:
        add_event(conn, "t1", "subscription_started", "2025-05-03 10:00", "u1", subscription_id="s1",
                  plan_id="pro", amount=10, interval="month")
        add_event(conn, "t1", "page_view", "2025-03-03 10:00", "u2")
    with engine.connect() as conn:
        touched = touched_cohort_months(conn, committed_since(engine, since), dt.date(2025, 8, 1))
    assert touched == {dt.date(2025, month, 1) for month in range(2, 8)}


def test_rates_of_thirds_rounded_half_up_to_four_decimals(engine, db_url):
    """Three users from ads in January, one active in February, two in March: a third and two
    thirds, 0.3333 and 0.6667 (user_cohorts: 33.33 and 66.67 percent)."""
    with engine.begin() as conn:
        for user in ("u1", "u2", "u3"):
            add_event(conn, "t1", "user_signup", "2025-01-05 10:00", user, source="ads")
        add_event(conn, "t1", "page_view", "2025-02-03 10:00", "u1")
        add_event(conn, "t1", "page_view", "2025-03-03 10:00", "u1")
        add_event(conn, "t1", "page_view", "2025-03-04 10:00", "u2")
    run(db_url, "2025-01-01", "2025-03-01")
    with engine.connect() as conn:
        segments = stored(conn)
        cohorts = dict(conn.execute(sa.text(
            "SELECT month_number, retention_rate FROM user_cohorts WHERE tenant_id = 't1' AND cohort_month = :c"),
            {"c": JAN}).all())
    for month, rate in ((1, D("0.3333")), (2, D("0.6667"))):
        for key in ((JAN, month, "source", "ads"), (JAN, month, "first_plan", "(none)")):
            assert segments[key][2] == rate
        assert cohorts[month] == rate * 100


# --- A run of the segments alone ---------------------------------------------------------------

# The Jan cohort's rows of February and March once u1's late payment of 25 and u2's late visit in
# February are absorbed: both users active in February, ltv (25) / 2 from then on.
# (cohort_month, month_number): (cohort_size, retained_users, retention_rate, revenue, ltv)
LATE_USER_COHORTS = {
    (JAN, 1): (2, 2, D("100.00"), D("25.00"), D("12.50")),
    (JAN, 2): (2, 0, D("0.00"), D("0.00"), D("12.50")),
}


def january_cohort_with_late_february(engine, db_url) -> None:
    """u1 (ads, basic) and u2 (organic, no subscription) sign up in January; both tables written
    for January to March; then u1's payment and u2's visit in February committed late."""
    with engine.begin() as conn:
        add_event(conn, "t1", "user_signup", "2025-01-05 10:00", "u1", source="ads")
        add_event(conn, "t1", "subscription_started", "2025-01-06 10:00", "u1", subscription_id="s1",
                  plan_id="basic", amount=10, interval="month")
        add_event(conn, "t1", "user_signup", "2025-01-10 10:00", "u2", source="organic")
    run(db_url, "2025-01-01", "2025-03-01")
    with engine.begin() as conn:
        add_event(conn, "t1", "payment_completed", "2025-02-10 10:00", "u1", payment_id="p1", amount=25)
        add_event(conn, "t1", "page_view", "2025-02-11 10:00", "u2")


def stored_user_cohorts(engine) -> dict[tuple, tuple]:
    with engine.connect() as conn:
        return {
            (r["cohort_month"], r["month_number"]): tuple(r[c] for c in COLUMNS)
            for r in rows(conn, "SELECT * FROM user_cohorts WHERE tenant_id = 't1' AND cohort_month = :c "
                                "AND month_number IN (1, 2)", c=JAN)
        }


def assert_late_february_segmented(engine) -> None:
    assert stored_user_cohorts(engine) == LATE_USER_COHORTS
    with engine.connect() as conn:
        february = {k[2:]: v for k, v in stored(conn).items() if k[:2] == (JAN, 1)}
    assert february == {
        ("first_plan", "basic"): (1, 1, D("1"), D("25"), D("25")),
        ("first_plan", "(none)"): (1, 1, D("1"), D("0"), D("0")),
        ("source", "ads"): (1, 1, D("1"), D("25"), D("25")),
        ("source", "organic"): (1, 1, D("1"), D("0"), D("0")),
    }


def test_a_segments_run_alone_after_late_events_brings_user_cohorts_up_to_date(engine, db_url):
    january_cohort_with_late_february(engine, db_url)
    # A user_cohorts run of April absorbs the late events: February's and March's user_cohorts rows
    # still say nobody active and no revenue.
    assert materialize_range(ASSETS, db_url, "2025-04-01", "2025-04-01", selection=["user_cohorts"]).success
    assert stored_user_cohorts(engine)[(JAN, 1)][:2] == (2, 0)
    # The segments alone for February and March (materialized in the UI, say): the run brings
    # user_cohorts' rows of its window up to the state it read, so the identity check passes.
    segmented = materialize_range(ASSETS, db_url, "2025-02-01", "2025-03-01", selection=["user_cohort_segments"])
    assert segmented.success
    assert failed_checks(segmented) == []
    assert brought_up_to_date(segmented) == 1
    assert_late_february_segmented(engine)
    # user_cohorts' own run of those months (it absorbs nothing new) finds nothing left to change.
    before = table_rows(engine, "user_cohorts", "id")
    cohorts_run = materialize_range(ASSETS, db_url, "2025-02-01", "2025-03-01", selection=["user_cohorts"])
    assert cohorts_run.success
    assert table_rows(engine, "user_cohorts", "id") == before
    # Both again, in the job's order: the segments find user_cohorts up to date.
    run(db_url, "2025-02-01", "2025-03-01")
    assert_late_february_segmented(engine)


def test_a_segments_run_that_brings_user_cohorts_up_to_date_advances_its_cache_versions(
        engine, db_url, redis_prefix, redis_server_url):
    january_cohort_with_late_february(engine, db_url)
    assert materialize_range(ASSETS, db_url, "2025-04-01", "2025-04-01", selection=["user_cohorts"]).success
    server = redis.Redis.from_url(redis_server_url)
    keys = [version_key(aggregate, tenant, redis_prefix)
            for aggregate in ("user_cohorts", "user_cohort_segments") for tenant in ("t1", "t2")]
    server.mset({key: "before" for key in keys})
    segmented = materialize_range(ASSETS, db_url, "2025-02-01", "2025-03-01", selection=["user_cohort_segments"])
    assert segmented.success and brought_up_to_date(segmented) == 1
    # t1's user_cohorts rows of February changed: the API reads them anew; t2 has no rows.
    cohorts_t1, cohorts_t2, segments_t1, segments_t2 = server.mget(keys)
    assert cohorts_t1 not in (None, b"before") and segments_t1 not in (None, b"before")
    assert (cohorts_t2, segments_t2) == (b"before", b"before")


def test_a_segments_run_reads_the_state_once_an_absorb_in_flight_has_committed(engine, db_url):
    january_cohort_with_late_february(engine, db_url)
    # The user_activity_months asset absorbs the late events in a transaction still open while the
    # segments run of February and March starts.
    waited, segmented = materialize_beside_an_open_absorb(engine, absorb_user_activity_months, lambda: materialize_range(
        ASSETS, db_url, "2025-02-01", "2025-03-01", selection=["user_cohort_segments"]))
    # The run waited for the absorb, then read its state: the segments and user_cohorts' February
    # both hold the late events, and the check passes.
    assert waited
    assert segmented.success
    assert failed_checks(segmented) == []
    assert_late_february_segmented(engine)


# --- Random histories ---------------------------------------------------------------------------

START = dt.date(2025, 1, 1)
LAST_MONTH = dt.date(2025, 4, 1)
DAYS = 120  # four months: cohorts of every month, months with and without activity
PLANS = ("p1", "p2", "p3")
# The contract's bounds: 0 < payment amount < 10^11 (docs/events.md#malformed-events).
amounts = st.one_of(
    st.sampled_from([Decimal("0.01"), Decimal("99999999999.99")]),
    st.decimals(min_value=Decimal("0.01"), max_value=Decimal("100"), places=2, allow_nan=False, allow_infinity=False),
)
# A source is a JSON string of 1 to 255 characters, anything else (none) (docs/metrics.md#segments).
sources = st.one_of(st.sampled_from(["ads", "organic", "", "x" * 255, "y" * 256, 7, None]),
                    st.text(st.characters(min_codepoint=32, max_codepoint=0x2FFF, exclude_categories=("Cs",)),
                            min_size=1, max_size=3))
moments = st.tuples(st.integers(0, DAYS - 1), st.integers(0, 86399))


@st.composite
def histories(draw) -> list[dict]:
    """One or two tenants of up to four users, each maybe signed up (twice, at times), with zero to
    two subscriptions, visits and payments anywhere in the four months."""
    events = []
    for tenant in draw(st.sampled_from([("t1",), ("t1", "t2")])):
        for user in ("u1", "u2", "u3", "u4")[: draw(st.integers(1, 4))]:
            for _ in range(draw(st.sampled_from([0, 1, 1, 1, 2]))):
                events.append({"type": "user_signup", "tenant": tenant, "user": user, "at": draw(moments),
                               "source": draw(sources)})
            for n in range(draw(st.integers(0, 2))):
                events.append({"type": "subscription_started", "tenant": tenant, "user": user, "at": draw(moments),
                               "subscription": f"s{n}", "plan": draw(st.sampled_from(PLANS))})
            for _ in range(draw(st.integers(0, 3))):
                events.append({"type": "page_view", "tenant": tenant, "user": user, "at": draw(moments)})
            for _ in range(draw(st.integers(0, 3))):
                events.append({"type": "payment_completed", "tenant": tenant, "user": user, "at": draw(moments),
                               "amount": draw(amounts)})
    return events


def load_history(engine, history: list[dict]) -> list[dict]:
    loaded = []
    with engine.begin() as conn:
        for n, e in enumerate(history):
            day, second = e["at"]
            at = dt.datetime.combine(START, dt.time()) + dt.timedelta(days=day, seconds=second)
            data: dict = {}
            if e["type"] == "user_signup" and e["source"] is not None:
                data["source"] = e["source"]
            if e["type"] == "subscription_started":
                data.update(subscription_id=e["subscription"], plan_id=e["plan"], amount="10", interval="month")
            if e["type"] == "payment_completed":
                data.update(payment_id=f"p{n}", amount=str(e["amount"]))
            event_id = f"h{n:03d}"
            add_event(conn, e["tenant"], e["type"], at, e["user"], event_id=event_id, **data)
            loaded.append({**e, "id": event_id, "at": at})
    return loaded


def reset(engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(
            "TRUNCATE analytics_events, subscription_events, customer_sources, user_signups, user_activity_months, "
            "user_cohorts, user_cohort_segments, malformed_events, state_watermarks, aggregate_freshness"
        ))


def _month(at: dt.datetime) -> dt.date:
    return dt.date(at.year, at.month, 1)


def _months_between(first: dt.date, last: dt.date) -> int:
    return (last.year - first.year) * 12 + last.month - first.month


def reference_segments(history: list[dict]) -> pd.DataFrame:
    """The rows of user_cohort_segments for the months January..April, worked out user by user
    from the definitions (docs/metrics.md#cohort-metrics, #cohort-segments) on the events."""
    columns = ["tenant_id", "cohort_month", "month_number", "dimension", "value", *COLUMNS]
    if not any(e["type"] == "user_signup" for e in history):
        return pd.DataFrame([], columns=columns)
    events = pd.DataFrame(history)
    events["month"] = events["at"].map(_month)
    ordered = events.sort_values(["at", "id"])
    # Each user's first signup and first start, whole rows (a missing source stays missing).
    signups = ordered[ordered.type == "user_signup"].drop_duplicates(["tenant", "user"]).set_index(["tenant", "user"])
    starts = ordered[ordered.type == "subscription_started"].drop_duplicates(["tenant", "user"]).set_index(
        ["tenant", "user"])
    if "plan" not in starts:
        starts["plan"] = None
    users = pd.DataFrame({"cohort_month": signups["month"]})

    def source(value) -> str:
        return value if isinstance(value, str) and 1 <= len(value) <= 255 else "(none)"

    users["source"] = signups["source"].map(source)
    users["first_plan"] = starts["plan"].reindex(users.index).map(lambda p: p if isinstance(p, str) else "(none)")
    activity = events.groupby(["tenant", "user", "month"]).size().rename("events")
    payments = events[events.type == "payment_completed"]
    revenue = {key: sum(group["amount"], Decimal(0)) for key, group in payments.groupby(["tenant", "user", "month"])}
    found = []
    for dimension in ("first_plan", "source"):
        for (tenant, cohort_month, value), group in users.groupby(
                [users.index.get_level_values(0), "cohort_month", dimension]):
            size = len(group)
            cumulative = Decimal(0)
            month = cohort_month
            while month <= LAST_MONTH:
                keys = [(tenant, user, month) for user in group.index.get_level_values(1)]
                retained = size if month == cohort_month else sum(key in activity.index for key in keys)
                month_revenue = sum((revenue.get(key, Decimal(0)) for key in keys), Decimal(0))
                cumulative += month_revenue
                found.append({
                    "tenant_id": tenant, "cohort_month": cohort_month,
                    "month_number": _months_between(cohort_month, month), "dimension": dimension, "value": value,
                    "cohort_size": size, "retained_users": retained,
                    "retention_rate": (Decimal(retained) / size).quantize(Decimal("0.0001"), ROUND_HALF_UP),
                    "revenue": month_revenue.quantize(Decimal("0.01"), ROUND_HALF_UP),
                    "ltv": (cumulative / size).quantize(Decimal("0.01"), ROUND_HALF_UP),
                })
                month = dt.date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return pd.DataFrame(found, columns=columns)


KEY = ["tenant_id", "cohort_month", "month_number", "dimension", "value"]


def sorted_frame(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame[[*KEY, *COLUMNS]].sort_values(KEY).reset_index(drop=True)
    for column in ("cohort_size", "retained_users", "month_number"):
        frame[column] = frame[column].astype(int)
    for column in ("retention_rate", "revenue", "ltv"):
        frame[column] = frame[column].map(lambda v: Decimal(v).normalize())
    return frame


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=histories())
def test_segments_match_a_pandas_reference_and_add_up_to_user_cohorts(engine, db_url, history):
    reset(engine)
    loaded = load_history(engine, history)
    run(db_url, START.isoformat(), LAST_MONTH.isoformat())  # every check passes, the identity among them

    with engine.connect() as conn:
        found = pd.DataFrame(rows(conn, f"SELECT {', '.join(KEY + list(COLUMNS))} FROM user_cohort_segments"),
                             columns=[*KEY, *COLUMNS])
        totals = pd.DataFrame(rows(conn, "SELECT tenant_id, cohort_month, month_number, cohort_size, "
                                         "retained_users, revenue FROM user_cohorts"),
                              columns=["tenant_id", "cohort_month", "month_number", "cohort_size",
                                       "retained_users", "revenue"])
    pd.testing.assert_frame_equal(sorted_frame(found), sorted_frame(reference_segments(loaded)))

    # The identity, added up here: for each dimension the values add up to user_cohorts.
    for dimension in ("first_plan", "source"):
        sums = (found[found.dimension == dimension]
                .groupby(["tenant_id", "cohort_month", "month_number"], as_index=False)[
                    ["cohort_size", "retained_users", "revenue"]].sum())
        both = totals.merge(sums, how="outer", on=["tenant_id", "cohort_month", "month_number"],
                            suffixes=("", "_segments"), indicator=True)
        assert (both["_merge"] == "both").all(), dimension
        for column in ("cohort_size", "retained_users", "revenue"):
            assert (both[column] == both[f"{column}_segments"]).all(), (dimension, column)
