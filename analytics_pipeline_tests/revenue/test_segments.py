"""revenue_segments (docs/metrics.md#revenue_segments): hand-worked per-segment figures (an upgrade, a
downgrade, an interval change, a reactivation on another plan, a customer without a source), a
late first signup, the identity with revenue_aggregates on random histories, a second,
customer-by-customer implementation in pandas on the same histories, and row-level security
through the new table."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from decimal import ROUND_HALF_UP, Decimal

import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics_pipeline.core import migrate
from analytics_pipeline.core.db import tenant_scope
from analytics_pipeline.revenue import segments
from analytics_pipeline.revenue.assets import (
    REVENUE_AGGREGATE,
    absorb_subscription_events,
    customer_sources,
    payment_history,
    revenue_aggregates,
    subscription_history,
)
from analytics_pipeline.revenue.segments import REVENUE_BROUGHT_UP_TO_DATE, revenue_segments, touched_segment_days

from ..helpers import add_event, committed_since, db_snapshot, materialize_beside_an_open_absorb, materialize_range, rows

ASSETS = [subscription_history, payment_history, customer_sources, revenue_aggregates, revenue_segments]
MONEY = ("mrr", "new_revenue", "reactivation_revenue", "expansion_revenue", "contraction_revenue",
         "churned_revenue", "transfer_in_revenue", "transfer_out_revenue")
COUNTS = ("active_customers", "new_customers", "reactivated_customers", "churned_customers",
          "transferred_in_customers", "transferred_out_customers")
COLUMNS = MONEY + COUNTS
# The columns revenue_aggregates has too: for every dimension the values add up to them.
SHARED = ("mrr", "arr", "new_revenue", "reactivation_revenue", "expansion_revenue", "contraction_revenue",
          "churned_revenue", "active_customers", "new_customers", "reactivated_customers", "churned_customers")


@pytest.fixture(autouse=True)
def keep_raw_events_forever(monkeypatch):
    monkeypatch.setenv("ANALYTICS_RETENTION_MONTHS", "240")


def run(db_url, start, end):
    result = materialize_range(ASSETS, db_url, start, end, selection=["revenue_aggregates", "revenue_segments"])
    assert result.success
    failed = [(c.asset_key.to_user_string(), c.check_name, c.metadata.get("examples"))
              for c in result.get_asset_check_evaluations() if not c.passed and c.check_name != "no_malformed_events"]
    assert not failed, failed
    # Run after revenue_aggregates, the segments find its rows up to date.
    assert brought_up_to_date(result) == 0
    return result


def segment_rows(conn, period_type: str, period_start: str, tenant: str = "t1") -> dict[tuple[str, str], dict]:
    """(dimension, value) -> the row's columns, numbers as floats."""
    return {
        (r["dimension"], r["value"]): {c: float(r[c]) for c in COLUMNS}
        for r in rows(conn, "SELECT * FROM revenue_segments WHERE tenant_id = :t AND period_type = :p "
                            "AND period_start = :s", t=tenant, p=period_type, s=period_start)
    }


def row(mrr=0, new=0, react=0, exp=0, con=0, churn=0, t_in=0, t_out=0,
        active=0, new_c=0, react_c=0, churn_c=0, in_c=0, out_c=0) -> dict:
    return dict(zip(COLUMNS, map(float, (mrr, new, react, exp, con, churn, t_in, t_out,
                                          active, new_c, react_c, churn_c, in_c, out_c))))


def test_plan_changes_interval_changes_reactivation_and_no_source_by_hand(engine, db_url):
    with engine.begin() as conn:
        # c1 (source ads): starter 10 on Jan 10, upgraded to pro 30 on Jan 15, downgraded to
        # starter 20 on Jan 20.
        add_event(conn, "t1", "user_signup", "2025-01-01 08:00", "c1", source="ads")
        add_event(conn, "t1", "subscription_started", "2025-01-10 09:00", "c1",
                  subscription_id="s1", plan_id="starter", amount=10, interval="month")
        add_event(conn, "t1", "subscription_changed", "2025-01-15 09:00", "c1",
                  subscription_id="s1", plan_id="pro", amount=30, interval="month")
        add_event(conn, "t1", "subscription_changed", "2025-01-20 09:00", "c1",
                  subscription_id="s1", plan_id="starter", amount=20, interval="month")
        # c2 (no signup: source (none)): pro 30 a month on Jan 12, billed yearly (360) from Jan 18,
        # the change naming no plan.
        add_event(conn, "t1", "subscription_started", "2025-01-12 09:00", "c2",
                  subscription_id="s2", plan_id="pro", amount=30, interval="month")
        add_event(conn, "t1", "subscription_changed", "2025-01-18 09:00", "c2",
                  subscription_id="s2", amount=360, interval="year")
        # c3 (source organic): starter 10 on Jan 5, cancelled Jan 8, back on team 50 on Jan 22.
        add_event(conn, "t1", "user_signup", "2025-01-02 08:00", "c3", source="organic")
        add_event(conn, "t1", "subscription_started", "2025-01-05 09:00", "c3",
                  subscription_id="s3", plan_id="starter", amount=10, interval="month")
        add_event(conn, "t1", "subscription_cancelled", "2025-01-08 09:00", "c3", subscription_id="s3")
        add_event(conn, "t1", "subscription_started", "2025-01-22 09:00", "c3",
                  subscription_id="s4", plan_id="team", amount=50, interval="month")
    run(db_url, "2025-01-01", "2025-01-31")
    with engine.connect() as conn:
        # Jan 15, the upgrade: c1's expansion of 20 is pro's, with the 10 that left starter (c3
        # churned on Jan 8, so starter is left empty); pro also holds c2's 30 since Jan 12. c3's
        # source organic has neither MRR nor a change that day: no row.
        assert segment_rows(conn, "day", "2025-01-15") == {
            ("plan", "starter"): row(mrr=0, t_out=10, out_c=1),
            ("plan", "pro"): row(mrr=60, exp=20, t_in=10, active=2, in_c=1),
            ("interval", "month"): row(mrr=60, exp=20, active=2),
            ("source", "ads"): row(mrr=30, exp=20, active=1),
            ("source", "(none)"): row(mrr=30, active=1),
        }
        # January: every figure by hand.
        #   plan starter: new 10 (c3) + 10 (c1), churned 10 (c3), in 20 (c1's downgrade), out 10
        #     (c1's upgrade); c1 ends on it with 20.
        #   plan pro: new 30 (c2), expansion 20 and in 10 (upgrade), contraction 10 and out 20
        #     (downgrade: c1 lost 30 there, 10 of it contraction); c2 ends on it with 30.
        #   plan team: reactivation 50 (c3, back on another plan).
        #   interval month: everything but c2's move to yearly billing, a transfer of 30.
        #   source: c1 ads, c3 organic, c2 (none).
        assert segment_rows(conn, "month", "2025-01-01") == {
            ("plan", "starter"): row(mrr=20, new=20, churn=10, t_in=20, t_out=10,
                                     active=1, new_c=2, churn_c=1, in_c=1, out_c=1),
            ("plan", "pro"): row(mrr=30, new=30, exp=20, con=10, t_in=10, t_out=20,
                                 active=1, new_c=1, in_c=1, out_c=1),
            ("plan", "team"): row(mrr=50, react=50, active=1, react_c=1),
            ("interval", "month"): row(mrr=70, new=50, react=50, exp=20, con=10, churn=10, t_out=30,
                                       active=2, new_c=3, react_c=1, churn_c=1, out_c=1),
            ("interval", "year"): row(mrr=30, t_in=30, active=1, in_c=1),
            ("source", "ads"): row(mrr=20, new=10, exp=20, con=10, active=1, new_c=1),
            ("source", "organic"): row(mrr=50, new=10, react=50, churn=10, active=1, new_c=1, react_c=1, churn_c=1),
            ("source", "(none)"): row(mrr=30, new=30, active=1, new_c=1),
        }

    # c2's first signup arrives late (source partner): all of c2's MRR moves to partner from
    # their first subscription day on, and the sensor's finder asks for every day from Jan 12.
    before = db_snapshot(engine)
    with engine.begin() as conn:
        add_event(conn, "t1", "user_signup", "2024-12-20 08:00", "c2", source="partner")
    # A run of revenue_aggregates absorbs it, and stamps the segment state it changed.
    assert materialize_range(ASSETS, db_url, "2025-01-31", "2025-01-31", selection=["revenue_aggregates"]).success
    with engine.connect() as conn:
        days = touched_segment_days(conn, committed_since(engine, before), dt.date(2025, 2, 1))
    assert min(days) == dt.date(2025, 1, 12) and max(days) == dt.date(2025, 1, 31)
    run(db_url, "2025-01-01", "2025-01-31")
    with engine.connect() as conn:
        month = segment_rows(conn, "month", "2025-01-01")
        assert month[("source", "partner")] == row(mrr=30, new=30, active=1, new_c=1)
        assert ("source", "(none)") not in month


def test_revision_0021_builds_on_an_existing_history_the_state_the_absorbs_keep(engine, db_url):
    with engine.begin() as conn:
        add_event(conn, "t1", "user_signup", "2025-01-01 08:00", "c1", source="ads")
        add_event(conn, "t1", "user_signup", "2025-01-03 08:00", "c1", source="later")
        add_event(conn, "t1", "subscription_started", "2025-01-10 09:00", "c1",
                  subscription_id="s1", plan_id="starter", amount=10, interval="month")
        add_event(conn, "t1", "subscription_changed", "2025-01-15 09:00", "c1",
                  subscription_id="s1", plan_id="pro", amount=90, interval="quarter")
        add_event(conn, "t1", "subscription_started", "2025-01-12 09:00", "c2",
                  subscription_id="s2", plan_id="pro", amount=30, interval="month")
        add_event(conn, "t1", "subscription_cancelled", "2025-01-20 09:00", "c2", subscription_id="s2")
    run(db_url, "2025-01-01", "2025-01-31")
    tables = {"subscription_events": "event_id", "customer_sources": "user_id",
              "customer_segment_days": "user_id, dimension, value, day",
              "tenant_segment_days": "dimension, value, day"}
    with engine.connect() as conn:
        kept = {table: rows(conn, f"SELECT * FROM {table} ORDER BY tenant_id, {order}") for table, order in tables.items()}
    assert len(kept["customer_segment_days"]) > 10
    migrate.downgrade(db_url, "0020_kpi_change")
    migrate.upgrade(db_url)
    with engine.connect() as conn:
        for table, order in tables.items():
            assert rows(conn, f"SELECT * FROM {table} ORDER BY tenant_id, {order}") == kept[table], table


def test_a_rerun_leaves_unchanged_rows_alone_and_rewrites_changed_ones(engine, db_url):
    with engine.begin() as conn:
        add_event(conn, "t1", "subscription_started", "2025-03-03 09:00", "c1",
                  subscription_id="s1", plan_id="starter", amount=10, interval="month")
    run(db_url, "2025-03-01", "2025-03-04")

    def versions():
        with engine.connect() as conn:
            return {(r["period_type"], str(r["period_start"]), r["dimension"], r["value"]): r["xmin"]
                    for r in rows(conn, "SELECT *, xmin::text AS xmin FROM revenue_segments")}

    written = versions()
    run(db_url, "2025-03-01", "2025-03-04")
    assert versions() == written
    # An expansion to 20 on Mar 4: the month's starter row is rewritten with it.
    with engine.begin() as conn:
        add_event(conn, "t1", "subscription_changed", "2025-03-04 09:00", "c1",
                  subscription_id="s1", amount=20, interval="month")
    run(db_url, "2025-03-01", "2025-03-04")
    assert versions()[("month", "2025-03-01", "plan", "starter")] != written[("month", "2025-03-01", "plan", "starter")]
    with engine.connect() as conn:
        assert segment_rows(conn, "month", "2025-03-01")[("plan", "starter")] == row(
            mrr=20, new=10, exp=10, active=1, new_c=1)


def test_rows_are_seen_only_by_their_tenant(engine, db_url):
    with engine.begin() as conn:
        for tenant in ("t1", "t2"):
            add_event(conn, tenant, "subscription_started", "2025-03-03 09:00", f"{tenant}-c",
                      subscription_id="s", plan_id=f"{tenant}-plan", amount=10, interval="month")
    run(db_url, "2025-03-01", "2025-03-04")
    with engine.connect() as conn, conn.begin(), tenant_scope(conn, "t2") as scoped:
        seen = rows(scoped, "SELECT DISTINCT tenant_id, value FROM revenue_segments WHERE dimension = 'plan'")
        assert seen == [{"tenant_id": "t2", "value": "t2-plan"}]
        assert rows(scoped, "SELECT count(*) AS n FROM tenant_segment_days WHERE tenant_id = 't1'") == [{"n": 0}]


# --- Random histories ------------------------------------------------------------------------------

START = dt.date(2025, 1, 1)
DAYS = 14  # two weeks: same-day changes, cancellations and reactivations meet often
PLANS = ("p1", "p2", "p3")
INTERVALS = ("week", "month", "quarter", "year")
# The contract's bounds: 0 <= amount < 10^11 (docs/events.md#malformed-events).
amounts = st.one_of(
    st.sampled_from([Decimal("0"), Decimal("0.01"), Decimal("99999999999.99")]),
    st.decimals(min_value=Decimal("0.01"), max_value=Decimal("100"), places=2, allow_nan=False, allow_infinity=False),
)
# A source is a JSON string of 1 to 255 characters, anything else (none) (docs/metrics.md#segments).
sources = st.one_of(
    st.sampled_from(["ads", "organic", "", "x" * 255, "y" * 256, 7, None]),
    st.text(st.characters(min_codepoint=32, max_codepoint=0x2FFF, exclude_categories=("Cs",)),
            min_size=1, max_size=5),
)
@st.composite
def history_events(draw) -> list[dict]:
    """One or two tenants of two customers, each with one or two subscriptions living through
    starts, changes with and without a plan, cancellations and restarts (the same day included),
    and maybe a signup: every movement, transfer and reactivation occurs."""
    events = []
    for tenant in draw(st.sampled_from([("t1",), ("t1", "t2")])):
        for user in ("c1", "c2"):
            if draw(st.booleans()):
                events.append({"kind": "signup", "tenant": tenant, "user": user, "subscription": "a",
                               "day": draw(st.integers(0, DAYS - 1)), "second": draw(st.integers(0, 86399)),
                               "plan": "p1", "interval": "month", "amount": Decimal(0),
                               "source": draw(sources)})
            for subscription in draw(st.sampled_from([("a",), ("a", "b")])):
                day, active = draw(st.integers(0, 3)), False
                for _ in range(draw(st.integers(1, 6))):
                    if active:
                        kind = draw(st.sampled_from(["change", "change_plan", "change_plan", "cancel"]))
                    else:  # a change of a cancelled subscription is ignored
                        kind = draw(st.sampled_from(["start", "start", "start", "change"]))
                    events.append({"kind": kind, "tenant": tenant, "user": user, "subscription": subscription,
                                   "day": day, "second": draw(st.integers(0, 86399)),
                                   "plan": draw(st.sampled_from(PLANS)), "interval": draw(st.sampled_from(INTERVALS)),
                                   "amount": draw(amounts), "source": None})
                    active = kind == "start" or (active and kind != "cancel")
                    day = min(day + draw(st.integers(0, 3)), DAYS - 1)
    return events


TYPES = {"start": "subscription_started", "change": "subscription_changed", "change_plan": "subscription_changed",
         "cancel": "subscription_cancelled", "signup": "user_signup"}


def load_history(engine, history: list[dict]) -> list[dict]:
    """Insert the generated events; returns them with their ids and timestamps."""
    loaded = []
    with engine.begin() as conn:
        for n, e in enumerate(history):
            at = dt.datetime.combine(START, dt.time()) + dt.timedelta(days=e["day"], seconds=e["second"])
            data: dict = {}
            if e["kind"] == "signup":
                if e["source"] is not None:
                    data["source"] = e["source"]
            else:
                data["subscription_id"] = e["subscription"]
            if e["kind"] in ("start", "change", "change_plan"):
                data.update(amount=str(e["amount"]), interval=e["interval"])
            if e["kind"] in ("start", "change_plan"):
                data["plan_id"] = e["plan"]
            event_id = f"h{n:03d}"
            add_event(conn, e["tenant"], TYPES[e["kind"]], at, e["user"], event_id=event_id, **data)
            loaded.append({**e, "id": event_id, "at": at, "data": data})
    return loaded


def reset(engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(
            "TRUNCATE analytics_events, subscription_events, payment_events, customer_sources, customer_mrr_days, "
            "tenant_mrr_days, customer_segment_days, tenant_segment_days, segment_state_changes, revenue_segments, "
            "revenue_aggregates, malformed_events, state_watermarks, aggregate_freshness"
        ))


def cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


MONTHS = {"week": Decimal(52) / 12, "month": Decimal(1), "quarter": Decimal(1) / 3, "year": Decimal(1) / 12}


def reference_segments(history: list[dict]) -> pd.DataFrame:
    """The day rows of revenue_segments, worked out customer by customer from the definitions
    (docs/metrics.md#segments, #segment-movements, #segment-customers) without the state tables."""
    events = sorted(history, key=lambda e: (e["at"], e["id"]))
    source: dict[tuple, str] = {}
    for e in events:
        key = (e["tenant"], e["user"])
        if e["kind"] == "signup" and key not in source:
            value = e["data"].get("source")
            source[key] = value if isinstance(value, str) and 1 <= len(value) <= 255 else "(none)"
    # Each subscription's (value, plan, interval) after each of its events, by day: the last wins.
    subs: dict[tuple, dict] = {}
    holdings: dict[tuple, dict[dt.date, dict]] = {}  # customer -> day -> subscription -> state
    for e in events:
        if e["kind"] == "signup":
            continue
        key = (e["tenant"], e["user"], e["subscription"])
        s = subs.setdefault(key, {"active": False, "value": Decimal(0), "plan": None, "interval": None})
        if e["kind"] == "start":
            s.update(active=True, value=cents(Decimal(e["data"]["amount"]) * MONTHS[e["interval"]]),
                     plan=e["plan"], interval=e["interval"])
        elif e["kind"] == "cancel":
            s.update(active=False, value=Decimal(0))
        elif s["active"]:
            s.update(value=cents(Decimal(e["data"]["amount"]) * MONTHS[e["interval"]]), interval=e["interval"])
            if e["kind"] == "change_plan":
                s["plan"] = e["plan"]
        customer = (e["tenant"], e["user"])
        holdings.setdefault(customer, {}).setdefault(e["at"].date(), {})[e["subscription"]] = dict(s)
    out = []
    for (tenant, user), days in holdings.items():
        held: dict[str, dict] = {}
        had_mrr = False
        before = {d: {} for d in ("plan", "interval", "source")}
        for day in sorted(days):
            held.update(days[day])
            after = {d: {} for d in ("plan", "interval", "source")}
            for s in held.values():
                if s["value"] or s["active"]:
                    for dim, value in (("plan", s["plan"] or "(none)"), ("interval", s["interval"] or "(none)"),
                                       ("source", source.get((tenant, user), "(none)"))):
                        after[dim][value] = after[dim].get(value, Decimal(0)) + s["value"]
            total_after = sum(after["source"].values(), Decimal(0))
            total_before = sum(before["source"].values(), Decimal(0))
            net = total_after - total_before
            for dim in after:
                values = sorted(set(after[dim]) | set(before[dim]))
                amount_after = {v: after[dim].get(v, Decimal(0)) for v in values}
                amount_before = {v: before[dim].get(v, Decimal(0)) for v in values}
                delta = {v: amount_after[v] - amount_before[v] for v in values}
                counted_after = min(values, key=lambda v: (-amount_after[v], v)) if total_after > 0 else None
                counted_before = min(values, key=lambda v: (-amount_before[v], v)) if total_before > 0 else None
                expansion = dict.fromkeys(values, Decimal(0))
                contraction = dict.fromkeys(values, Decimal(0))
                if total_before > 0 and total_after > 0 and net > 0:
                    left = net
                    for v in sorted((v for v in values if delta[v] > 0), key=lambda v: (-delta[v], v)):
                        expansion[v] = min(delta[v], left)
                        left -= expansion[v]
                if total_before > 0 and total_after > 0 and net < 0:
                    left = -net
                    for v in sorted((v for v in values if delta[v] < 0), key=lambda v: (delta[v], v)):
                        contraction[v] = min(-delta[v], left)
                        left -= contraction[v]
                for v in values:
                    both = total_before > 0 and total_after > 0
                    starts = total_before == 0 and total_after > 0
                    counts_after, counts_before = v == counted_after, v == counted_before
                    if delta[v] == 0 and counts_after == counts_before:
                        continue
                    out.append({
                        "tenant_id": tenant, "dimension": dim, "value": v, "day": day,
                        "new_revenue": amount_after[v] if starts and not had_mrr else 0,
                        "reactivation_revenue": amount_after[v] if starts and had_mrr else 0,
                        "expansion_revenue": expansion[v],
                        "contraction_revenue": contraction[v],
                        "churned_revenue": amount_before[v] if total_before > 0 and total_after == 0 else 0,
                        "transfer_in_revenue": delta[v] - expansion[v] if both and delta[v] > 0 else 0,
                        "transfer_out_revenue": -delta[v] - contraction[v] if both and delta[v] < 0 else 0,
                        "new_customers": int(starts and not had_mrr and counts_after),
                        "reactivated_customers": int(starts and had_mrr and counts_after),
                        "churned_customers": int(total_before > 0 and total_after == 0 and counts_before),
                        "transferred_in_customers": int(both and counts_after and not counts_before),
                        "transferred_out_customers": int(both and counts_before and not counts_after),
                    })
            had_mrr = had_mrr or total_after > 0
            before = after
    changes = pd.DataFrame(out, columns=["tenant_id", "dimension", "value", "day", *MONEY[1:], *COUNTS[1:]])
    for c in (*MONEY[1:], *COUNTS[1:]):
        changes[c] = changes[c].astype(float)
    changes = changes.groupby(["tenant_id", "dimension", "value", "day"], as_index=False).sum()
    # Day rows: every day of the range for each value, levels as running sums of the day's
    # changes; a row where the value has MRR > 0 or a change.
    grid = changes[["tenant_id", "dimension", "value"]].drop_duplicates().merge(
        pd.DataFrame({"day": [START + dt.timedelta(days=n) for n in range(DAYS + 7)]}), how="cross")
    days = grid.merge(changes, how="left", on=["tenant_id", "dimension", "value", "day"], indicator=True)
    days["changed"] = days.pop("_merge") == "both"
    days = days.fillna(0.0).sort_values(["tenant_id", "dimension", "value", "day"])
    net = (days.new_revenue + days.reactivation_revenue + days.expansion_revenue - days.contraction_revenue
           - days.churned_revenue + days.transfer_in_revenue - days.transfer_out_revenue)
    net_customers = (days.new_customers + days.reactivated_customers - days.churned_customers
                     + days.transferred_in_customers - days.transferred_out_customers)
    keys = [days.tenant_id, days.dimension, days.value]
    days["mrr"] = net.groupby(keys).cumsum().round(2)
    days["active_customers"] = net_customers.groupby(keys).cumsum()
    return days[(days.mrr > 0) | days.changed].drop(columns="changed").reset_index(drop=True)


def stored_day_rows(engine) -> pd.DataFrame:
    with engine.connect() as conn:
        found = pd.DataFrame(rows(conn, "SELECT tenant_id, dimension, value, period_start AS day, "
                                        f"{', '.join(COLUMNS)} FROM revenue_segments WHERE period_type = 'day'"))
    if found.empty:
        return pd.DataFrame(columns=["tenant_id", "dimension", "value", "day", *COLUMNS])
    for c in COLUMNS:
        found[c] = found[c].astype(float)
    return found


def sorted_frame(frame: pd.DataFrame) -> pd.DataFrame:
    columns = ["tenant_id", "dimension", "value", "day", *COLUMNS]
    return frame[columns].sort_values(columns[:4]).reset_index(drop=True)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=history_events())
def test_segments_match_a_customer_by_customer_reference_and_add_up_to_revenue_aggregates(engine, db_url, history):
    reset(engine)
    loaded = load_history(engine, history)
    end = (START + dt.timedelta(days=DAYS + 6)).isoformat()
    run(db_url, START.isoformat(), end)  # every check passes, the identity among them

    # The reference, day by day, for every tenant, dimension and value.
    expected = sorted_frame(reference_segments(loaded))
    found = sorted_frame(stored_day_rows(engine))
    pd.testing.assert_frame_equal(found, expected, check_dtype=False)

    # The identity, added up here: for every dimension the values' rows of each period add up to
    # revenue_aggregates' row, column by column.
    with engine.connect() as conn:
        segments = pd.DataFrame(rows(conn, f"SELECT tenant_id, period_type, period_start, dimension, "
                                           f"{', '.join(SHARED)} FROM revenue_segments"))
        totals = pd.DataFrame(rows(conn, f"SELECT tenant_id, period_type, period_start, {', '.join(SHARED)} "
                                         "FROM revenue_aggregates"))
    if segments.empty:
        assert totals.empty or (totals[list(SHARED)].astype(float) == 0).all().all()
        return
    sums = segments.groupby(["tenant_id", "period_type", "period_start", "dimension"], as_index=False)[
        list(SHARED)].sum()
    for dimension in ("plan", "interval", "source"):
        one = sums[sums.dimension == dimension].drop(columns="dimension")
        both = totals.merge(one, how="outer", on=["tenant_id", "period_type", "period_start"],
                            suffixes=("", "_segments")).fillna(0)
        for column in SHARED:
            assert (both[column].astype(float) == both[f"{column}_segments"].astype(float)).all(), (dimension, column)


def test_a_history_of_json_values_loads_as_the_generator_writes_it(engine):
    """The generator's events are valid under the contract (none lands in malformed_events), so
    the reference sees what the pipeline sees."""
    history = [{"kind": "signup", "user": "c1", "subscription": "a", "day": 0, "second": 0, "plan": "p1",
                "interval": "month", "amount": Decimal("0"), "source": 7, "tenant": "t1"}]
    loaded = load_history(engine, history)
    with engine.connect() as conn:
        data = rows(conn, "SELECT event_data FROM analytics_events")[0]["event_data"]
    assert data == json.loads(json.dumps(loaded[0]["data"]))



def identity_breaks(result) -> list:
    return [c.metadata.get("examples") for c in result.get_asset_check_evaluations()
            if c.check_name == "values_add_up_to_revenue_aggregates" and not c.passed]


def stored_identity_breaks(engine) -> list:
    """Where the stored tables break the identity on MRR (segments' sum against revenue_aggregates')."""
    with engine.connect() as conn:
        return rows(conn, """
            SELECT s.tenant_id, s.period_type, s.period_start, s.dimension, sum(s.mrr) AS segments, r.mrr AS revenue
            FROM revenue_segments AS s
            LEFT JOIN revenue_aggregates AS r USING (tenant_id, period_type, period_start)
            GROUP BY s.tenant_id, s.period_type, s.period_start, s.dimension, r.mrr
            HAVING sum(s.mrr) IS DISTINCT FROM r.mrr""")


def brought_up_to_date(result) -> int:
    # One materialization per partition of the range, all with the run's metadata.
    [value] = {m.metadata[REVENUE_BROUGHT_UP_TO_DATE].value
               for m in result.asset_materializations_for_node("revenue_segments")}
    return value


@pytest.fixture
def revenue_recomputations(monkeypatch) -> list:
    """The windows a segments run recomputed revenue_aggregates for."""
    calls: list = []

    def compute(conn, params):
        calls.append((str(params["window_start"]), str(params["window_end"])))
        REVENUE_AGGREGATE.compute(conn, params)

    monkeypatch.setattr(segments, "REVENUE_AGGREGATE", dataclasses.replace(REVENUE_AGGREGATE, compute=compute))
    return calls


def january_upgraded_late(engine, db_url) -> None:
    """c1: starter 10 from Jan 10, both aggregates written for January; then a late upgrade to pro
    30 on Jan 15 committed."""
    with engine.begin() as conn:
        add_event(conn, "t1", "subscription_started", "2025-01-10 09:00", "c1",
                  subscription_id="s1", plan_id="starter", amount=10, interval="month")
    run(db_url, "2025-01-01", "2025-01-31")
    with engine.begin() as conn:
        add_event(conn, "t1", "subscription_changed", "2025-01-15 09:00", "c1",
                  subscription_id="s1", plan_id="pro", amount=30, interval="month")


def assert_january_upgraded(engine) -> None:
    assert stored_identity_breaks(engine) == []
    with engine.connect() as conn:
        assert rows(conn, "SELECT mrr, expansion_revenue FROM revenue_aggregates WHERE tenant_id = 't1' "
                          "AND period_type = 'month' AND period_start = '2025-01-01'") == [
            {"mrr": Decimal("30.00"), "expansion_revenue": Decimal("20.00")}]
        assert segment_rows(conn, "month", "2025-01-01")[("plan", "pro")] == row(
            mrr=30, exp=20, t_in=10, active=1, in_c=1)


def test_a_late_event_segmented_before_revenue_aggregates_holds_the_identity(engine, db_url, revenue_recomputations):
    january_upgraded_late(engine, db_url)
    # A run of revenue_aggregates whose window (Feb 1) does not hold Jan 15 absorbs the upgrade:
    # January's revenue rows still say 10.
    assert materialize_range(ASSETS, db_url, "2025-02-01", "2025-02-01", selection=["revenue_aggregates"]).success
    # The new-events sensor asks both aggregates for Jan 15 on; the segments run commits first. It
    # brings revenue_aggregates' rows of its window up to the state it read: the check passes.
    segmented = materialize_range(ASSETS, db_url, "2025-01-15", "2025-01-31", selection=["revenue_segments"])
    assert segmented.success
    assert identity_breaks(segmented) == []
    assert brought_up_to_date(segmented) == 1
    assert revenue_recomputations == [("2025-01-15", "2025-02-01")]
    assert_january_upgraded(engine)
    # Then the revenue run of those days: nothing left to change, the identity still holds; the
    # segments run of both finds revenue_aggregates up to date and does not recompute it.
    run(db_url, "2025-01-15", "2025-01-31")
    assert revenue_recomputations == [("2025-01-15", "2025-02-01")]
    assert_january_upgraded(engine)


def test_a_segments_run_reads_the_state_once_an_absorb_in_flight_has_committed(engine, db_url):
    january_upgraded_late(engine, db_url)
    # The subscription_history asset absorbs the upgrade in a transaction still open while the
    # segments run of Jan 15 on starts.
    waited, segmented = materialize_beside_an_open_absorb(engine, absorb_subscription_events, lambda: materialize_range(
        ASSETS, db_url, "2025-01-15", "2025-01-31", selection=["revenue_segments"]))
    # The run waited for the absorb, then read its state: segments and revenue_aggregates' January
    # both hold the upgrade, and the check passes.
    assert waited
    assert segmented.success
    assert identity_breaks(segmented) == []
    assert_january_upgraded(engine)


def revenue_computed_then(monkeypatch, statement: str) -> None:
    """The segments run's recomputation of revenue_aggregates, then `statement` on its computed
    month rows: revenue_aggregates computing other figures than the segments from one state."""

    def compute(conn, params):
        REVENUE_AGGREGATE.compute(conn, params)
        conn.execute(sa.text(f"UPDATE revenue_period_rows SET {statement} WHERE tenant_id = 't1' "
                             "AND period_type = 'month' AND period_start = '2025-01-01'"))

    monkeypatch.setattr(segments, "REVENUE_AGGREGATE", dataclasses.replace(REVENUE_AGGREGATE, compute=compute))


def segments_run_after_late_upgrade(engine, db_url):
    january_upgraded_late(engine, db_url)
    assert materialize_range(ASSETS, db_url, "2025-02-01", "2025-02-01", selection=["revenue_aggregates"]).success
    return materialize_range(ASSETS, db_url, "2025-01-15", "2025-01-31", selection=["revenue_segments"],
                             raise_on_error=False)


def check_passed(result, name: str) -> bool:
    [passed] = {c.passed for c in result.get_asset_check_evaluations() if c.check_name == name}
    return passed


def test_the_identity_fails_when_revenue_aggregates_brought_up_to_date_disagrees(engine, db_url, monkeypatch):
    # The lagging January is brought up to date, but to an MRR of 31 where the segments say 30:
    # evaluated anew after the catch-up, the check names tenant, period, dimension and column.
    revenue_computed_then(monkeypatch, "mrr = mrr + 1")
    segmented = segments_run_after_late_upgrade(engine, db_url)
    assert brought_up_to_date(segmented) == 1
    breaks = [b for examples in identity_breaks(segmented) for b in examples.value]
    for dimension in ("interval", "plan", "source"):
        assert (f"tenant t1, month 2025-01-01, {dimension}: mrr: the values add up to 30.00, "
                "revenue_aggregates has 31.00") in breaks
    assert check_passed(segmented, "values_fit_columns")


def test_a_tenant_revenue_aggregates_holds_back_fails_the_identity(engine, db_url, monkeypatch):
    # Brought up to date, t1's January MRR would not fit its column: revenue_aggregates keeps its
    # rows of the window (10 a day), the segments are written (30), and the check names the disagreement; the
    # segments held no tenant back.
    revenue_computed_then(monkeypatch, "mrr = 1e17")
    segmented = segments_run_after_late_upgrade(engine, db_url)
    assert brought_up_to_date(segmented) == 0
    breaks = [b for examples in identity_breaks(segmented) for b in examples.value]
    assert ("tenant t1, day 2025-01-15, plan: mrr: the values add up to 30.00, "
            "revenue_aggregates has 10.00") in breaks
    assert check_passed(segmented, "values_fit_columns")
    with engine.connect() as conn:
        assert segment_rows(conn, "month", "2025-01-01")[("plan", "pro")]["mrr"] == 30


@pytest.mark.parametrize(
    ("corruption", "failing"),
    [
        # MRR off by one: only the MRR bridge breaks (and the identity with revenue_aggregates).
        ("mrr = mrr + 1, arr = (mrr + 1) * 12", {"mrr_bridge", "values_add_up_to_revenue_aggregates"}),
        # One active customer too many: only the customer bridge breaks (and the identity).
        ("active_customers = active_customers + 1",
         {"customer_bridge", "values_add_up_to_revenue_aggregates"}),
        # A transfer in and out of the same amount, one negative: the bridges still hold.
        ("transfer_in_revenue = -5, transfer_out_revenue = -5", {"non_negative"}),
    ],
)
def test_each_rule_check_names_the_stored_row_that_breaks_it(engine, db_url, corruption, failing):
    """The rule checks of revenue_segments evaluated on the stored rows outside a run
    (Aggregate.check_stored_rows): all pass on what a run wrote; one corrupted row fails exactly
    the checks whose rule it breaks, each naming that row."""
    with engine.begin() as conn:
        add_event(conn, "t1", "subscription_started", "2025-03-03 09:00", "c1",
                  subscription_id="s1", plan_id="starter", amount=10, interval="month")
        add_event(conn, "t1", "subscription_started", "2025-03-04 09:00", "c2",
                  subscription_id="s2", plan_id="pro", amount=30, interval="month")
    run(db_url, "2025-03-01", "2025-03-06")
    window = (dt.date(2025, 3, 1), dt.date(2025, 3, 6))

    def failed_checks(conn) -> dict[str, str]:
        return {r.check_name: str(r.metadata["examples"].data) for r in segments.REVENUE_SEGMENTS.check_stored_rows(
            conn, *window) if not r.passed and r.check_name != "no_malformed_events"}

    with engine.begin() as conn:
        assert failed_checks(conn) == {}
        conn.execute(sa.text(f"UPDATE revenue_segments SET {corruption} WHERE id = 't1:day:2025-03-05:plan:pro'"))
        failed = failed_checks(conn)
    assert set(failed) == failing
    for check in failing - {"values_add_up_to_revenue_aggregates"}:
        assert "t1:day:2025-03-05:plan:pro" in failed[check]
        assert "starter" not in failed[check]
