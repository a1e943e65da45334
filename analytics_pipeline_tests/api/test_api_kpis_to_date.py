"""/v1/kpis compares a running period with as many days of the period before (the default), or
the last complete periods: on the 1st, the 15th and the last day of a month and across a leap
February. The expected figures are worked out here from the day rows, in plain Python, from the
definitions in docs/metrics.md (flows summed over the span's days, levels of its last day, the
KPIs from those), never read back from the API's SQL."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa

from analytics_pipeline.core.sql import load_sql

from ..api_support import api_env, auth, client, redis_prefix, redis_server_url
from ..helpers import add_tenant

FIRST, LAST = dt.date(2024, 1, 1), dt.date(2024, 4, 30)
FLOWS = ("new_revenue", "expansion_revenue", "reactivation_revenue", "contraction_revenue", "churned_revenue",
         "total_revenue", "new_customers", "reactivated_customers", "churned_customers")


def _days() -> dict[dt.date, dict]:
    """Day rows with movements that differ from day to day, MRR and customers following them."""
    days, mrr, customers = {}, Decimal(1000), 50
    day = FIRST
    while day <= LAST:
        n = (day - FIRST).days
        row = {
            "new_revenue": Decimal(10 + n % 7 * 5), "expansion_revenue": Decimal(n % 4 * 3),
            "reactivation_revenue": Decimal(9 if n % 10 == 0 else 0), "contraction_revenue": Decimal(n % 3 * 2),
            "churned_revenue": Decimal(n % 5 * 4), "total_revenue": Decimal(100 + n),
            "new_customers": 1 + n % 2, "reactivated_customers": 1 if n % 10 == 0 else 0,
            "churned_customers": n % 3 // 2,
        }
        mrr += (row["new_revenue"] + row["expansion_revenue"] + row["reactivation_revenue"]
                - row["contraction_revenue"] - row["churned_revenue"])
        customers += row["new_customers"] + row["reactivated_customers"] - row["churned_customers"]
        days[day] = {**row, "mrr": mrr, "arr": mrr * 12, "active_customers": customers}
        day += dt.timedelta(days=1)
    return days


DAYS = _days()


def _figures(first: dt.date, last: dt.date) -> dict:
    """The KPIs of the days first..last, by docs/metrics.md#kpis."""
    span = [DAYS[first + dt.timedelta(days=i)] for i in range((last - first).days + 1)]
    f = {name: sum(row[name] for row in span) for name in FLOWS}
    end = span[-1]
    f.update(mrr=end["mrr"], arr=end["arr"], active_customers=end["active_customers"])
    f["net_new_mrr"] = (f["new_revenue"] + f["reactivation_revenue"] + f["expansion_revenue"]
                        - f["contraction_revenue"] - f["churned_revenue"])
    opening_mrr = f["mrr"] - f["net_new_mrr"]
    opening_customers = f["active_customers"] - (f["new_customers"] + f["reactivated_customers"] - f["churned_customers"])
    lost = f["churned_revenue"] + f["contraction_revenue"]
    f.update(
        arpa=round(f["mrr"] / f["active_customers"], 2),
        logo_churn_rate=Decimal(f["churned_customers"]) / opening_customers,
        gross_mrr_churn_rate=lost / opening_mrr,
        net_mrr_churn_rate=(lost - f["expansion_revenue"] - f["reactivation_revenue"]) / opening_mrr,
        grr=(opening_mrr - lost) / opening_mrr,
        nrr=(opening_mrr + f["expansion_revenue"] - f["contraction_revenue"] - f["churned_revenue"]) / opening_mrr,
        quick_ratio=(f["new_revenue"] + f["expansion_revenue"] + f["reactivation_revenue"]) / lost if lost else None,
    )
    return f


@pytest.fixture
def day_and_month_rows(engine):
    """The day rows, and the month rows made of them as the pipeline makes them (flows summed,
    levels of the last day; docs/metrics.md#periods)."""
    columns = (*FLOWS, "mrr", "arr", "active_customers")
    insert = sa.text(
        "INSERT INTO revenue_aggregates (id, tenant_id, period_type, period_start, period_end, payment_count, "
        f"payment_success_count, refund_count, refund_amount, {', '.join(columns)}) "
        f"VALUES (:id, 'acme', :kind, :start, :end, 0, 0, 0, 0, {', '.join(':' + c for c in columns)})"
    )
    with engine.begin() as conn:
        add_tenant(conn, "acme")
        for day, row in DAYS.items():
            conn.execute(insert, {"id": f"acme:day:{day}", "kind": "day", "start": day, "end": day, **row})
        for month in (1, 2, 3, 4):
            start = dt.date(2024, month, 1)
            end = dt.date(2024, month + 1, 1) - dt.timedelta(days=1)
            figures = _figures(start, end)
            conn.execute(insert, {"id": f"acme:month:{start}", "kind": "month", "start": start, "end": end,
                                  **{c: figures[c] for c in columns}})


D = dt.date
CASES = {
    # day, compare: (current first, last), (previous first, last), label
    "the 1st": ("2024-03-01", "to_date", (D(2024, 3, 1), D(2024, 3, 1)), (D(2024, 2, 1), D(2024, 2, 1)),
                "1 Mar vs 1 Feb"),
    "the 15th": ("2024-03-15", "to_date", (D(2024, 3, 1), D(2024, 3, 15)), (D(2024, 2, 1), D(2024, 2, 15)),
                 "1–15 Mar vs 1–15 Feb"),
    "the 30th after a leap February": ("2024-03-30", "to_date", (D(2024, 3, 1), D(2024, 3, 30)),
                                       (D(2024, 2, 1), D(2024, 2, 29)), "1–30 Mar vs 1–29 Feb"),
    "the last day: whole months": ("2024-03-31", "to_date", (D(2024, 3, 1), D(2024, 3, 31)),
                                   (D(2024, 2, 1), D(2024, 2, 29)), "1–31 Mar vs 1–29 Feb"),
    "the 28th of a leap February": ("2024-02-28", "to_date", (D(2024, 2, 1), D(2024, 2, 28)),
                                    (D(2024, 1, 1), D(2024, 1, 28)), "1–28 Feb vs 1–28 Jan"),
    "the 29th of February, its last day": ("2024-02-29", "to_date", (D(2024, 2, 1), D(2024, 2, 29)),
                                           (D(2024, 1, 1), D(2024, 1, 31)), "1–29 Feb vs 1–31 Jan"),
    "the 30th of April against March's first 30": ("2024-04-30", "to_date", (D(2024, 4, 1), D(2024, 4, 30)),
                                                   (D(2024, 3, 1), D(2024, 3, 31)), "1–30 Apr vs 1–31 Mar"),
    "the 15th, last complete months": ("2024-03-15", "complete", (D(2024, 2, 1), D(2024, 2, 29)),
                                       (D(2024, 1, 1), D(2024, 1, 31)), "1–29 Feb vs 1–31 Jan"),
    "the last day, last complete months": ("2024-03-31", "complete", (D(2024, 3, 1), D(2024, 3, 31)),
                                           (D(2024, 2, 1), D(2024, 2, 29)), "1–31 Mar vs 1–29 Feb"),
}
SHOWN = ("mrr", "arr", "new_revenue", "expansion_revenue", "reactivation_revenue", "contraction_revenue",
         "churned_revenue", "net_new_mrr", "total_revenue", "active_customers", "new_customers",
         "reactivated_customers", "churned_customers", "arpa", "logo_churn_rate", "gross_mrr_churn_rate",
         "net_mrr_churn_rate", "grr", "nrr", "quick_ratio")


def _close(got, expected) -> bool:
    if expected is None:
        return got is None
    return got is not None and abs(Decimal(str(got)) - expected) <= Decimal("1e-9") * max(1, abs(expected))


@pytest.mark.parametrize("case", CASES)
def test_kpis_compare_the_same_elapsed_days(client, day_and_month_rows, case):
    day, compare, current, previous, label = CASES[case]
    body = client.get(f"/v1/kpis?period_type=month&day={day}&compare={compare}", headers=auth("acme")).json()
    assert body["label"] == label
    assert (body["current"]["from"], body["current"]["to"]) == tuple(d.isoformat() for d in current)
    assert (body["previous"]["from"], body["previous"]["to"]) == tuple(d.isoformat() for d in previous)
    kpis = {k["kpi"]: k for k in body["kpis"]}
    now, before = _figures(*current), _figures(*previous)
    for kpi in SHOWN:
        assert _close(kpis[kpi]["current"], now[kpi]), (kpi, kpis[kpi]["current"], now[kpi])
        assert _close(kpis[kpi]["previous"], before[kpi]), (kpi, kpis[kpi]["previous"], before[kpi])
    # The change: percent of the previous value for an amount, points for a ratio, one decimal.
    expected_pct = round(100 * (now["new_revenue"] - before["new_revenue"]) / before["new_revenue"], 1)
    assert Decimal(str(kpis["new_revenue"]["change_pct"])) == expected_pct
    expected_points = round(100 * (now["nrr"] - before["nrr"]), 1)
    assert Decimal(str(kpis["nrr"]["change_points"])) == expected_points
    # The trailing-twelve-month KPIs are stored for whole months: none for part of one.
    if not body["current"]["whole_period"]:
        assert kpis["ttm_nrr"]["current"] is None and kpis["ttm_nrr"]["change_points"] is None


def test_the_start_of_a_month_is_no_false_alarm(client, day_and_month_rows):
    """On 4 March, March's four days against all of February read as a collapse; against
    February's first four days they do not."""
    to_date = {k["kpi"]: k for k in client.get("/v1/kpis?day=2024-03-04", headers=auth("acme")).json()["kpis"]}
    first_four = _figures(D(2024, 3, 1), D(2024, 3, 4))["new_revenue"] / _figures(D(2024, 2, 1), D(2024, 2, 4))["new_revenue"]
    assert Decimal(str(to_date["new_revenue"]["change_pct"])) == round(100 * (first_four - 1), 1)
    assert to_date["new_revenue"]["change_pct"] > -50  # the whole month would be about -88 %


def test_the_default_is_period_to_date(client, day_and_month_rows):
    body = client.get("/v1/kpis?day=2024-03-04", headers=auth("acme")).json()
    assert (body["compare"], body["label"]) == ("to_date", "1–4 Mar vs 1–4 Feb")


def test_part_of_a_period_uses_the_views_formulas(engine, day_and_month_rows):
    """kpis.sql works out a part of a period from its day rows with the view revenue_kpis's
    formulas: given all of a month as a part, it gives the view's KPIs of the month's row."""
    sql = sa.text(load_sql("analytics_pipeline.api", "kpis"))
    with engine.connect() as conn:
        for month in (1, 2, 3):
            start, end = D(2024, month, 1), D(2024, month + 1, 1) - dt.timedelta(days=1)
            spans = {"current_start": start, "current_first": start, "current_last": end, "current_whole": False,
                     "previous_start": start, "previous_first": start, "previous_last": end, "previous_whole": True}
            rows = conn.execute(sql, {"tenant_id": "acme", "period_type": "month", **spans}).mappings().all()
            for row in rows:
                if not row["kpi"].startswith("ttm_"):
                    assert row["current"] == row["previous"], (month, row["kpi"])
