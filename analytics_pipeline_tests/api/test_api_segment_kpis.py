"""/v1/kpis/segments on a real PostgreSQL and a real Redis, from revenue_segments rows a real
pipeline run wrote: the KPIs of each plan after an upgrade, a downgrade and a churn, worked out by
hand in this file (docs/metrics.md#segment-kpis: a transfer is not churn), for whole months and a
month to date, also where a value's transfers in and out do not cancel (a plan emptied by transfers
alone, a reactivation, a plan new in the month); the values' churn adding up to the tenant's
/v1/kpis; CSV; another tenant's token
never seeing them, row-level security included; the cached answer invalidated by a revenue_segments run; the 400s."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest

from analytics_pipeline.api.params import comparison
from analytics_pipeline.api.queries import comparison_params, load
from analytics_pipeline.core.resources import AnalyticsDatabase
from analytics_pipeline.revenue.assets import customer_sources, payment_history, revenue_aggregates, subscription_history
from analytics_pipeline.revenue.segments import revenue_segments

from ..api_support import api_env, auth, client, redis_prefix, redis_server_url
from ..helpers import add_event, materialize_range

ASSETS = [subscription_history, payment_history, customer_sources, revenue_aggregates, revenue_segments]
MAY = "segment=plan&period_type=month&day=2025-05-31&compare=complete"


@pytest.fixture(autouse=True)
def keep_raw_events_forever(monkeypatch):
    # The hand-built histories lie in 2025; keep them inside the retention window.
    monkeypatch.setenv("ANALYTICS_RETENTION_MONTHS", "240")


def _event(engine, tenant, kind, at, user, **data):
    with engine.begin() as conn:
        add_event(conn, tenant, kind, at, user, subscription_id=f"s-{user}", **data)


def _run(db_url):
    assert materialize_range(ASSETS, db_url, "2025-04-01", "2025-05-31").success


@pytest.fixture
def plan_moves(engine, db_url):
    """acme in April: u1 and u3 on basic (10 each), u2 and u4 on pro (30 each). In May: u1
    upgrades to pro at 30 (May 10), u2 downgrades to basic at 10 (May 12), u3 cancels (May 15).
    globex: one customer on enterprise (99) since April."""
    for user, plan, amount, day in (("u1", "basic", 10, 5), ("u2", "pro", 30, 5), ("u3", "basic", 10, 5),
                                    ("u4", "pro", 30, 6)):
        _event(engine, "acme", "subscription_started", f"2025-04-{day:02d} 10:00", user, plan_id=plan,
               amount=amount, interval="month")
    _event(engine, "acme", "subscription_changed", "2025-05-10 10:00", "u1", plan_id="pro", amount=30, interval="month")
    _event(engine, "acme", "subscription_changed", "2025-05-12 10:00", "u2", plan_id="basic", amount=10,
           interval="month")
    _event(engine, "acme", "subscription_cancelled", "2025-05-15 10:00", "u3")
    _event(engine, "globex", "subscription_started", "2025-04-03 10:00", "g1", plan_id="enterprise", amount=99,
           interval="month")
    _run(db_url)


def _kpis(client, tenant, query):
    response = client.get(f"/v1/kpis/segments?{query}", headers=auth(tenant))
    assert response.status_code == 200, response.text
    return response


def _values(body) -> dict[str, dict[str, tuple]]:
    """value -> kpi -> (current, previous, change_pct, change_points), money and ratios exact."""
    def exact(number):
        return None if number is None else Decimal(str(number)).quantize(Decimal("0.0001"))

    return {v["value"]: {k["kpi"]: (exact(k["current"]), exact(k["previous"]), exact(k["change_pct"]),
                                    exact(k["change_points"])) for k in v["kpis"]} for v in body["values"]}


def _d(value):
    return None if value is None else Decimal(value).quantize(Decimal("0.0001"))


def test_the_kpis_of_each_plan_after_an_upgrade_a_downgrade_and_a_churn(client, plan_moves):
    body = _kpis(client, "acme", MAY).json()
    assert (body["segment"], body["period_type"], body["label"], body["currency"]) == (
        "plan", "month", "1–31 May vs 1–30 Apr", "USD")
    assert [v["value"] for v in body["values"]] == ["pro", "basic"]  # by May's MRR: 60, then 10
    values = _values(body)
    # basic: opening 20 (u1, u3), u1 leaves for pro (a transfer of 10, not churn), u2 comes from
    # pro (a transfer of 10), u3 churns (10). Closing 10 (u2), one customer.
    #   opening customers 2 = 1 - (0 + 0 - 1 + 1 - 1); churn rate 1/2; gross MRR churn 10/20;
    #   GRR (20 - 10 - 0)/20; NRR (20 + 0 - 0 - 10)/20; quick ratio 0/10; net new 10 - 20.
    # April: both plans new (basic 20, two customers): no opening, every rate null.
    basic = values["basic"]
    assert basic["mrr"] == (_d(10), _d(20), _d("-50.0"), None)
    assert basic["arr"] == (_d(120), _d(240), _d("-50.0"), None)
    assert basic["active_customers"] == (_d(1), _d(2), _d("-50.0"), None)
    assert basic["churned_revenue"][:2] == (_d(10), _d(0))
    assert basic["contraction_revenue"][:2] == (_d(0), _d(0))
    assert basic["transfer_in_revenue"][:2] == basic["transfer_out_revenue"][:2] == (_d(10), _d(0))
    assert basic["transferred_in_customers"][:2] == basic["transferred_out_customers"][:2] == (_d(1), _d(0))
    assert basic["new_revenue"] == (_d(0), _d(20), _d("-100.0"), None)
    assert basic["net_new_mrr"] == (_d(-10), _d(20), _d("-150.0"), None)
    assert basic["churned_customers"][:2] == (_d(1), _d(0))
    assert basic["arpa"] == (_d(10), _d(10), _d("0.0"), None)
    assert basic["logo_churn_rate"] == (_d("0.5"), None, None, None)
    assert basic["gross_mrr_churn_rate"] == (_d("0.5"), None, None, None)
    assert basic["net_mrr_churn_rate"][0] == _d("0.5")
    assert basic["grr"] == (_d("0.5"), None, None, None)
    assert basic["nrr"] == (_d("0.5"), None, None, None)
    assert basic["quick_ratio"][0] == _d(0)
    # pro: opening 60 (u2, u4); u1 comes from basic: 10 transferred in and 20 expansion; u2 leaves
    # for basic: 20 contraction and 10 transferred out. Closing 60 (u1, u4), two customers.
    #   churn rate 0/2; gross MRR churn 20/60; GRR (60 - 0 - 20)/60; NRR (60 + 20 - 20)/60;
    #   quick ratio 20/20; ARPA 30 both months.
    pro = values["pro"]
    assert pro["mrr"] == (_d(60), _d(60), _d("0.0"), None)
    assert pro["expansion_revenue"][:2] == pro["contraction_revenue"][:2] == (_d(20), _d(0))
    assert pro["transfer_in_revenue"][:2] == pro["transfer_out_revenue"][:2] == (_d(10), _d(0))
    assert pro["churned_revenue"][:2] == (_d(0), _d(0))
    assert pro["net_new_mrr"][:2] == (_d(0), _d(60))
    assert pro["logo_churn_rate"][0] == _d(0)
    assert pro["gross_mrr_churn_rate"][0] == _d(Decimal(20) / 60)
    assert pro["grr"][0] == _d(Decimal(40) / 60)
    assert pro["nrr"][0] == _d(1)
    assert pro["quick_ratio"][0] == _d(1)
    assert pro["arpa"] == (_d(30), _d(30), _d("0.0"), None)
    # A ratio's change is in points: no previous, none.
    assert all(k["change_points"] is None for v in body["values"] for k in v["kpis"] if k["unit"] != "ratio")
    polarity = {k["kpi"]: k["polarity"] for k in body["values"][0]["kpis"]}
    assert (polarity["churned_revenue"], polarity["grr"], polarity["transfer_out_revenue"]) == (
        "lower_is_better", "higher_is_better", "neutral")


def test_the_plans_churn_adds_up_to_the_tenants(client, plan_moves):
    """Transfers are no churn: the plans' churned and contraction MRR, churned customers and MRR
    add up to /v1/kpis' figures for the same spans, and their transfers cancel out."""
    response = client.get("/v1/kpis?period_type=month&day=2025-05-31&compare=complete", headers=auth("acme"))
    tenant = {k["kpi"]: Decimal(str(k["current"])) for k in response.json()["kpis"] if k["current"] is not None}
    values = _values(_kpis(client, "acme", MAY).json())
    for kpi in ("mrr", "churned_revenue", "contraction_revenue", "expansion_revenue", "new_revenue",
                "churned_customers", "active_customers", "net_new_mrr"):
        assert sum(v[kpi][0] for v in values.values()) == tenant[kpi], kpi
    assert tenant["churned_revenue"] == 10 and tenant["contraction_revenue"] == 20
    assert sum(v["transfer_in_revenue"][0] - v["transfer_out_revenue"][0] for v in values.values()) == 0


def test_a_month_to_date_is_read_from_the_day_rows(client, plan_moves):
    """1–13 May against 1–13 April: u1's upgrade and u2's downgrade are in, u3's churn is not.
    basic ends the span with u2 and u3 (20, two customers), pro with u1 and u4 (60)."""
    body = _kpis(client, "acme", "segment=plan&period_type=month&day=2025-05-13").json()
    assert body["label"] == "1–13 May vs 1–13 Apr" and body["current"]["whole_period"] is False
    values = _values(body)
    assert values["basic"]["mrr"] == (_d(20), _d(20), _d("0.0"), None)
    assert values["basic"]["active_customers"][:2] == (_d(2), _d(2))
    assert values["basic"]["churned_revenue"][0] == _d(0)
    assert values["basic"]["transfer_out_revenue"][0] == values["basic"]["transfer_in_revenue"][0] == _d(10)
    # Nothing was lost but a transfer out: basic's retention is whole.
    assert values["basic"]["grr"][0] == values["basic"]["nrr"][0] == _d(1)
    assert values["basic"]["logo_churn_rate"][0] == _d(0)
    assert values["pro"]["mrr"][0] == _d(60) and values["pro"]["grr"][0] == _d(Decimal(40) / 60)


def test_csv(client, plan_moves):
    response = _kpis(client, "acme", MAY + "&format=csv")
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="kpis_plan_month_2025-05-01_2025-05-31.csv"' in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 2 * 23
    grr = {r["value"]: r for r in rows if r["kpi"] == "grr"}
    assert Decimal(grr["basic"]["current"]) == Decimal("0.5") and grr["basic"]["previous"] == ""
    assert (grr["basic"]["unit"], grr["basic"]["polarity"], grr["basic"]["currency"]) == ("ratio", "higher_is_better", "USD")
    assert (grr["pro"]["current_from"], grr["pro"]["current_to"], grr["pro"]["previous_from"],
            grr["pro"]["previous_to"]) == ("2025-05-01", "2025-05-31", "2025-04-01", "2025-04-30")
    assert [r["value"] for r in rows][::23] == ["pro", "basic"]


def test_another_tenants_token_never_sees_them(client, db_url, plan_moves):
    globex = _kpis(client, "globex", MAY).json()
    assert [v["value"] for v in globex["values"]] == ["enterprise"]
    assert _values(globex)["enterprise"]["mrr"][:2] == (_d(99), _d(99))
    assert _kpis(client, "initech", MAY).json()["values"] == []  # no rows at all
    assert [v["value"] for v in _kpis(client, "acme", MAY).json()["values"]] == ["pro", "basic"]
    # Row-level security, not only the query's filter: globex's transaction asking the SQL for
    # acme's rows gets none, acme's own gets them.
    spans = comparison_params(comparison("month", "2025-05-31", "complete"))
    for tenant, expected in (("globex", set()), ("acme", {"pro", "basic"})):
        with AnalyticsDatabase(url=db_url).tenant_transaction(tenant) as conn:
            rows = conn.execute(load("kpis_segments"), {"tenant_id": "acme", "segment": "plan", **spans}).all()
        assert {row.value for row in rows} == expected, tenant


def test_a_revenue_segments_run_invalidates_the_cached_answer(client, engine, db_url, plan_moves):
    first = _kpis(client, "acme", MAY)
    assert first.headers["x-cache"] == "miss"
    assert _kpis(client, "acme", MAY).headers["x-cache"] == "hit"
    assert _kpis(client, "globex", MAY).headers["x-cache"] == "miss"
    # u4 moves to a new plan, team (45), on May 20.
    _event(engine, "acme", "subscription_changed", "2025-05-20 10:00", "u4", plan_id="team", amount=45,
           interval="month")
    assert _kpis(client, "acme", MAY).content == first.content  # no run yet: the same answer
    _run(db_url)
    after = _kpis(client, "acme", MAY)
    assert after.headers["x-cache"] == "miss"
    values = _values(after.json())
    assert list(values) == ["team", "pro", "basic"]
    assert values["team"]["mrr"][0] == _d(45) and values["pro"]["mrr"][0] == _d(30)
    assert values["pro"]["transfer_out_revenue"][0] == _d(40)  # u2's 10 and u4's 30
    assert _kpis(client, "globex", MAY).headers["x-cache"] == "hit"  # its rows did not change


@pytest.mark.parametrize(
    "query, parameter",
    [
        ("segment=tier", "segment"),
        ("segment=plan&period_type=hour", "period_type"),
        ("segment=plan&compare=yesterday", "compare"),
        ("segment=plan&day=2025-02-30", "day"),
        ("segment=plan&day=1999-12-31", "day"),
        ("segment=plan&format=xml", "format"),
        ("segment=plan&from=2025-01-01", "from"),
    ],
)
def test_bad_parameters_get_400_naming_them(client, query, parameter):
    response = client.get(f"/v1/kpis/segments?{query}", headers=auth("acme"))
    assert response.status_code == 400, response.text
    assert response.json()["parameter"] == parameter


@pytest.fixture
def transfers_that_do_not_cancel(engine, db_url):
    """acme in April: u1 and u2 on basic (10 each), u5 on basic (20) from April 7 until its cancel
    on April 20, u3 on pro (30). In May: u1 upgrades to pro at 30 (May 10), u2 moves to pro at the
    same 10 (May 11): basic is emptied by transfers alone. u5 comes back on pro at 20 (May 14, a
    reactivation), u6 starts on team at 25 (May 16). globex: one customer on enterprise (99)."""
    for user, plan, amount, day in (("u1", "basic", 10, 5), ("u2", "basic", 10, 5), ("u5", "basic", 20, 7),
                                    ("u3", "pro", 30, 6)):
        _event(engine, "acme", "subscription_started", f"2025-04-{day:02d} 10:00", user, plan_id=plan,
               amount=amount, interval="month")
    _event(engine, "acme", "subscription_cancelled", "2025-04-20 10:00", "u5")
    _event(engine, "acme", "subscription_changed", "2025-05-10 10:00", "u1", plan_id="pro", amount=30, interval="month")
    _event(engine, "acme", "subscription_changed", "2025-05-11 10:00", "u2", plan_id="pro", amount=10, interval="month")
    with engine.begin() as conn:
        add_event(conn, "acme", "subscription_started", "2025-05-14 10:00", "u5", subscription_id="s-u5-again",
                  plan_id="pro", amount=20, interval="month")
    _event(engine, "acme", "subscription_started", "2025-05-16 10:00", "u6", plan_id="team", amount=25,
           interval="month")
    _event(engine, "globex", "subscription_started", "2025-04-03 10:00", "g1", plan_id="enterprise", amount=99,
           interval="month")
    _run(db_url)


def test_a_plan_emptied_by_transfers_keeps_its_retention(client, db_url, transfers_that_do_not_cancel):
    """Transfers in and out of a value that do not cancel, a reactivation and a value new in the
    span, worked out by hand (docs/metrics.md#segment-kpis):
    basic in May: opening 20 (u1, u2; u5 left in April), both leave by transfer (20 out, two
      customers), nothing churned: closing 0 and no customer; GRR and NRR (20 - 0 - 0)/20 = 1,
      customer churn 0/2, gross and net MRR churn 0, no loss so no quick ratio, no customer so no ARPA.
      April: new 40 (u1, u2, u5), churned 20 (u5), closing 20, two customers; quick ratio 40/20.
    pro in May: opening 30 (u3); u1 comes in (10 transferred, 20 expansion), u2 (10 transferred),
      u5 reactivates (20): closing 90, four customers; opening customers 4 - (0 + 1 - 0 + 2 - 0) = 1.
      GRR 30/30; NRR (30 + 20)/30, reactivation not in it; net MRR churn (0 - 20 - 20)/30; ARPA 90/4.
    team: no row in April, so 0 there (not null) and no change in percent; new 25 in May."""
    body = _kpis(client, "acme", MAY).json()
    assert [v["value"] for v in body["values"]] == ["pro", "team", "basic"]  # by May's MRR: 90, 25, 0
    values = _values(body)
    basic = values["basic"]
    assert basic["mrr"] == (_d(0), _d(20), _d("-100.0"), None)
    assert basic["active_customers"] == (_d(0), _d(2), _d("-100.0"), None)
    assert basic["transfer_out_revenue"][:2] == (_d(20), _d(0)) and basic["transfer_in_revenue"][:2] == (_d(0), _d(0))
    assert basic["transferred_out_customers"][:2] == (_d(2), _d(0))
    assert basic["churned_revenue"][:2] == (_d(0), _d(20)) and basic["churned_customers"][:2] == (_d(0), _d(1))
    assert basic["net_new_mrr"][:2] == (_d(-20), _d(20))
    assert basic["grr"][:2] == basic["nrr"][:2] == (_d(1), None)
    assert basic["logo_churn_rate"][:2] == (_d(0), None)
    assert basic["gross_mrr_churn_rate"][:2] == basic["net_mrr_churn_rate"][:2] == (_d(0), None)
    assert basic["quick_ratio"][:2] == (None, _d(2))
    assert basic["arpa"][:2] == (None, _d(10))
    pro = values["pro"]
    assert pro["mrr"][:2] == (_d(90), _d(30)) and pro["active_customers"][:2] == (_d(4), _d(1))
    assert (pro["transfer_in_revenue"][0], pro["expansion_revenue"][0], pro["reactivation_revenue"][0]) == (
        _d(20), _d(20), _d(20))
    assert pro["reactivated_customers"][0] == _d(1) and pro["transferred_in_customers"][0] == _d(2)
    assert pro["net_new_mrr"][0] == _d(60)
    assert pro["grr"][0] == _d(1)
    assert pro["nrr"][0] == _d(Decimal(50) / 30)
    assert pro["net_mrr_churn_rate"][0] == _d(Decimal(-40) / 30)
    assert pro["logo_churn_rate"][0] == _d(0)
    assert pro["quick_ratio"][0] is None
    assert pro["arpa"][0] == _d("22.5")
    team = values["team"]
    assert team["mrr"] == (_d(25), _d(0), None, None)
    assert team["new_revenue"] == (_d(25), _d(0), None, None)
    assert team["active_customers"] == (_d(1), _d(0), None, None)
    assert team["grr"] == (None, None, None, None)


def test_a_month_to_date_takes_each_levels_last_day_row(client, db_url, transfers_that_do_not_cancel):
    """1–20 May against 1–20 April. basic's last day row in May is the 11th (u2 leaves it, no MRR
    after): its level is that row's 0, not its first day's 20; its opening 20 holds the transfers.
    In April to the 20th, u5's cancel is in: churned 20, closing 20. Under globex's row-level
    security the SQL of a month to date (day rows) gives none of acme's values."""
    query = "segment=plan&period_type=month&day=2025-05-20"
    values = _values(_kpis(client, "acme", query).json())
    assert values["basic"]["mrr"][:2] == (_d(0), _d(20))
    assert values["basic"]["active_customers"][:2] == (_d(0), _d(2))
    assert values["basic"]["grr"][0] == _d(1) and values["basic"]["logo_churn_rate"][0] == _d(0)
    assert values["basic"]["churned_revenue"][1] == _d(20)
    assert values["pro"]["mrr"][:2] == (_d(90), _d(30)) and values["pro"]["nrr"][0] == _d(Decimal(50) / 30)
    spans = comparison_params(comparison("month", "2025-05-20", "to_date"))
    assert spans["current_whole"] is False and spans["previous_whole"] is False
    for tenant, expected in (("globex", set()), ("acme", {"pro", "team", "basic"})):
        with AnalyticsDatabase(url=db_url).tenant_transaction(tenant) as conn:
            rows = conn.execute(load("kpis_segments"), {"tenant_id": "acme", "segment": "plan", **spans}).all()
        assert {row.value for row in rows} == expected, tenant
