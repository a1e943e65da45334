"""/v1/revenue/segments on a real PostgreSQL and a real Redis: its rows against the table read
directly, the identity with /v1/revenue, CSV, tenant isolation (row-level security), the cache and
its invalidation by a revenue_segments run, and its 400s."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import pandas as pd
import pytest
import sqlalchemy as sa

from analytics_pipeline.core.resources import AnalyticsDatabase
from analytics_pipeline.reports.queries import ReportData
from analytics_pipeline.reports.render import csv_url
from analytics_pipeline.reports.schedule import Period
from analytics_pipeline.revenue.assets import customer_sources, payment_history, revenue_aggregates, subscription_history
from analytics_pipeline.revenue.segments import REVENUE_SEGMENTS, revenue_segments

from .api_data import TODAY, two_segmented_tenants, two_tenants
from ..api_support import api_env, auth, client, redis_prefix, redis_server_url
from ..helpers import add_event, materialize_range

MONEY = ("mrr", "arr", "new_revenue", "reactivation_revenue", "expansion_revenue", "contraction_revenue",
         "churned_revenue", "transfer_in_revenue", "transfer_out_revenue")
COUNTS = ("active_customers", "new_customers", "reactivated_customers", "churned_customers",
          "transferred_in_customers", "transferred_out_customers")


def _table(engine, tenant: str) -> pd.DataFrame:
    """The tenant's revenue_segments rows, read as the table's owner (no row-level security)."""
    with engine.connect() as conn:
        frame = pd.read_sql(sa.text("SELECT * FROM revenue_segments WHERE tenant_id = :t"), conn, params={"t": tenant})
    frame["period_start"] = frame["period_start"].astype(str)
    frame["period_end"] = frame["period_end"].astype(str)
    return frame


def _cents(value) -> Decimal:
    return round(Decimal(str(value)), 2)


def _keyed(rows) -> dict:
    return {(r["period_start"], r["value"]): {c: _cents(r[c]) for c in (*MONEY, *COUNTS)} for r in rows}


@pytest.mark.parametrize("segment", ["plan", "interval", "source"])
@pytest.mark.parametrize("period_type", ["day", "month"])
def test_the_rows_are_the_tables(client, engine, two_segmented_tenants, segment, period_type):
    start, end = (TODAY.replace(day=1) - pd.DateOffset(months=3)).date(), TODAY
    response = client.get(f"/v1/revenue/segments?segment={segment}&period_type={period_type}"
                          f"&from={start}&to={end}", headers=auth("acme"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["segment"], body["period_type"], body["from"], body["to"]) == (
        segment, period_type, str(start), str(end))
    assert body["currency"] == "USD"
    table = _table(engine, "acme")
    expected = table[(table.dimension == segment) & (table.period_type == period_type)
                     & (table.period_start <= str(end)) & (table.period_end >= str(start))]
    assert len(expected) > 0
    assert _keyed(body["rows"]) == _keyed(expected.to_dict("records"))
    assert {r["dimension"] for r in body["rows"]} == {segment}
    # Within a period, the values by MRR, largest first.
    for period, rows in pd.DataFrame(body["rows"]).groupby("period_start"):
        assert list(rows["mrr"]) == sorted(rows["mrr"], reverse=True), period


def test_the_values_add_up_to_the_revenue_rows(client, two_segmented_tenants):
    """The identity, through the API: per period, the plans' MRR, movements and customers are
    /v1/revenue's."""
    query = f"period_type=week&from={TODAY.replace(day=1)}&to={TODAY}"
    revenue = {r["period_start"]: r for r in client.get(f"/v1/revenue?{query}", headers=auth("acme")).json()["rows"]}
    segments = pd.DataFrame(client.get(f"/v1/revenue/segments?{query}", headers=auth("acme")).json()["rows"])
    assert set(segments["value"]) == {"basic", "pro", "team"}  # segment defaults to plan
    columns = ["mrr", "new_revenue", "churned_revenue", "active_customers", "new_customers"]
    sums = segments.groupby("period_start")[columns].sum()
    assert set(sums.index) == set(revenue)
    for period, row in sums.iterrows():
        assert {c: round(Decimal(str(row[c])), 2) for c in columns} == {
            c: round(Decimal(str(revenue[period][c])), 2) for c in columns}, period
    net_transfers = segments["transfer_in_revenue"].sum() - segments["transfer_out_revenue"].sum()
    assert net_transfers == 0 and segments["transfer_in_revenue"].sum() > 0


def test_csv(client, engine, two_segmented_tenants):
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE revenue_segments SET value = '=HYPERLINK(\"http://x\")' "
                             "WHERE tenant_id = 'acme' AND value = 'team'"))
    path = f"/v1/revenue/segments?segment=plan&period_type=month&from={TODAY.replace(day=1)}&to={TODAY}"
    response = client.get(f"{path}&format=csv", headers=auth("acme"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    disposition = f'filename="revenue_segments_plan_month_{TODAY.replace(day=1)}_{TODAY}.csv"'
    assert disposition in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert list(rows[0])[-1] == "currency" and {"dimension", "value", "transfer_in_revenue",
                                                "transferred_out_customers"} <= set(rows[0])
    assert {r["value"] for r in rows} == {"basic", "pro", "'=HYPERLINK(\"http://x\")"}  # a formula is text
    json_rows = client.get(path, headers=auth("acme")).json()["rows"]
    assert _keyed([{**r, "value": r["value"].lstrip("'")} for r in rows]) == _keyed(json_rows)


def test_another_tenants_values_never_appear(client, engine, two_segmented_tenants):
    """globex has plans acme has not (plan-01 ...): acme never sees them, nor globex's figures,
    and row-level security keeps them from acme's transaction whatever the query."""
    query = f"segment=plan&period_type=day&from={TODAY.replace(day=1)}&to={TODAY}"
    acme = client.get(f"/v1/revenue/segments?{query}", headers=auth("acme")).json()
    globex = client.get(f"/v1/revenue/segments?{query}", headers=auth("globex")).json()
    assert {r["value"] for r in acme["rows"]} == {"basic", "pro", "team"}
    assert {r["value"] for r in globex["rows"]} == {"basic", "pro", "team", *(f"plan-{n:02d}" for n in range(1, 13))}
    assert {r["tenant_id"] for r in acme["rows"]} == {"acme"}
    assert _keyed(acme["rows"]) == _keyed(_table(engine, "acme").query(
        f"dimension == 'plan' and period_type == 'day' and period_start >= '{TODAY.replace(day=1)}'"
        f" and period_start <= '{TODAY}'").to_dict("records"))
    with AnalyticsDatabase(url=str(engine.url.render_as_string(hide_password=False))).tenant_transaction(
            "acme") as conn:
        tenants = conn.execute(sa.text("SELECT DISTINCT tenant_id FROM revenue_segments")).scalars().all()
    assert tenants == ["acme"]
    assert client.get(f"/v1/revenue/segments?{query}", headers=auth("initech")).json()["rows"] == []


@pytest.mark.parametrize(
    "query, parameter",
    [
        ("segment=tier", "segment"),
        ("segment=PLAN", "segment"),
        ("segment=plan&period_type=hour", "period_type"),
        ("segment=plan&format=xml", "format"),
        ("segment=plan&from=2025-02-30", "from"),
        ("segment=plan&from=2025-03-01&to=2025-02-01", "from"),
        ("dimension=plan", "dimension"),
    ],
)
def test_bad_parameters_get_400_naming_them(client, query, parameter):
    response = client.get(f"/v1/revenue/segments?{query}", headers=auth("acme"))
    assert response.status_code == 400, response.text
    assert response.json()["parameter"] == parameter
    assert response.json()["detail"].startswith(f"{parameter}: ")


def test_an_empty_segment_is_the_default(client, two_segmented_tenants):
    response = client.get("/v1/revenue/segments?segment=&period_type=month", headers=auth("acme"))
    assert response.status_code == 200 and response.json()["segment"] == "plan"


# --- the cache and a real run ------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def keep_raw_events_forever(monkeypatch):
    # The hand-built histories lie in 2025; keep them inside the retention window.
    monkeypatch.setenv("ANALYTICS_RETENTION_MONTHS", "240")


def _subscribe(engine, tenant, user, day, plan, amount):
    with engine.begin() as conn:
        add_event(conn, tenant, "subscription_started", f"{day} 10:00", user, subscription_id=f"s-{user}",
                  plan_id=plan, amount=amount, interval="month")


def _run(db_url):
    assets = [subscription_history, payment_history, customer_sources, revenue_aggregates, revenue_segments]
    assert materialize_range(assets, db_url, "2025-05-01", "2025-05-31").success


def _plans(client, tenant):
    response = client.get("/v1/revenue/segments?segment=plan&period_type=day&from=2025-05-20&to=2025-05-20",
                          headers=auth(tenant))
    assert response.status_code == 200, response.text
    return {r["value"]: Decimal(str(r["mrr"])) for r in response.json()["rows"]}, response.headers["x-cache"]


def test_a_revenue_segments_run_invalidates_the_cached_answer(client, engine, db_url):
    assert REVENUE_SEGMENTS.name == "revenue_segments"  # the aggregate whose versions the answer is cached under
    _subscribe(engine, "acme", "u1", "2025-05-02", "basic", 10)
    _subscribe(engine, "globex", "g1", "2025-05-02", "pro", 70)
    _run(db_url)
    assert _plans(client, "acme") == ({"basic": Decimal("10.00")}, "miss")
    assert _plans(client, "acme") == ({"basic": Decimal("10.00")}, "hit")
    assert _plans(client, "globex") == ({"pro": Decimal("70.00")}, "miss")

    _subscribe(engine, "acme", "u2", "2025-05-10", "pro", 25)
    assert _plans(client, "acme") == ({"basic": Decimal("10.00")}, "hit")  # no run yet: the same rows
    _run(db_url)
    # The run committed and advanced acme's version of revenue_segments: the next read recomputes.
    assert _plans(client, "acme") == ({"basic": Decimal("10.00"), "pro": Decimal("25.00")}, "miss")
    assert _plans(client, "acme") == ({"basic": Decimal("10.00"), "pro": Decimal("25.00")}, "hit")
    assert _plans(client, "globex") == ({"pro": Decimal("70.00")}, "hit")  # its rows did not change


def test_a_reports_link_to_its_revenue_by_plan_answers_with_those_rows(client, engine, two_segmented_tenants):
    """A comprehensive report's revenue_segments table too big to attach links this endpoint
    (reports/render.py, csv_url): the plans' rows of the report's month and the month before."""
    end = TODAY.replace(day=1) - dt.timedelta(days=1)
    start, previous_start = end.replace(day=1), (end.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    period = Period(start, end, previous_start, start - dt.timedelta(days=1), "month", f"{start:%B %Y}")
    url = csv_url("revenue_segments", ReportData("Acme", period, ("revenue",)))
    assert url.startswith("/v1/revenue/segments?")
    response = client.get(url, headers=auth("acme"))
    assert response.status_code == 200, response.text
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert {(r["period_start"], r["dimension"], r["value"], _cents(r["mrr"])) for r in rows} == {
        (str(r.period_start), "plan", r.value, _cents(r.mrr)) for r in _table(engine, "acme").itertuples()
        if r.dimension == "plan" and r.period_type == "month" and str(previous_start) <= r.period_start <= str(start)}
