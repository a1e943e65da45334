"""/v1/cohorts/segments on a real PostgreSQL and a real Redis: its rows against user_cohort_segments
read directly, the values adding up to /v1/cohorts, CSV, tenant isolation (row-level security
included), the cache under user_cohort_segments' versions (which its runs advance), and the 400s."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pandas as pd
import pytest
import sqlalchemy as sa

from analytics_pipeline.api.queries import load
from analytics_pipeline.cohorts.segments import SEGMENTS_AGGREGATE
from analytics_pipeline.core.cache_versions import CacheInvalidation
from analytics_pipeline.core.resources import AnalyticsDatabase

from .api_data import TODAY, two_segmented_tenants, two_tenants
from ..api_support import api_env, auth, client, redis_prefix, redis_server_url

FIRST = (TODAY.replace(day=1) - pd.DateOffset(months=5)).date()
QUERY = f"from={FIRST:%Y-%m}&to={TODAY:%Y-%m}"


def _table(engine, tenant: str, dimension: str) -> dict:
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT * FROM user_cohort_segments WHERE tenant_id = :t AND dimension = :d AND cohort_month >= :f"
        ), {"t": tenant, "d": dimension, "f": FIRST}).mappings().all()
    return {(str(r["cohort_month"]), r["value"], r["month_number"]): (
        r["cohort_size"], r["retained_users"], r["retention_rate"], r["revenue"], r["ltv"]) for r in rows}


def _keyed(rows) -> dict:
    return {(r["cohort_month"], r["value"], r["month_number"]): (
        r["cohort_size"], r["retained_users"], Decimal(str(r["retention_rate"])), round(Decimal(str(r["revenue"])), 2),
        round(Decimal(str(r["ltv"])), 2)) for r in rows}


@pytest.mark.parametrize("segment, dimension", [("plan", "first_plan"), ("source", "source"), ("", "first_plan")])
def test_the_rows_are_the_tables(client, engine, two_segmented_tenants, segment, dimension):
    response = client.get(f"/v1/cohorts/segments?segment={segment}&{QUERY}", headers=auth("acme"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["segment"], body["from"], body["to"], body["currency"]) == (
        segment or "plan", str(FIRST), str(TODAY.replace(day=1)), "USD")
    expected = _table(engine, "acme", dimension)
    assert expected and _keyed(body["rows"]) == expected
    # Each cohort's values by size, largest first; each value's months in order.
    for month, rows in pd.DataFrame(body["rows"]).groupby("cohort_month", sort=False):
        sizes = rows[rows.month_number == 0].set_index("value")["cohort_size"]
        assert list(dict.fromkeys(rows["value"])) == list(sizes.sort_values(ascending=False, kind="stable").index)
        for _, months in rows.groupby("value"):
            assert list(months["month_number"]) == sorted(months["month_number"])


def test_the_values_add_up_to_the_cohorts(client, two_segmented_tenants):
    cohorts = {(r["cohort_month"], r["month_number"]): r
               for r in client.get(f"/v1/cohorts?{QUERY}", headers=auth("acme")).json()["rows"]}
    for segment in ("plan", "source"):
        rows = pd.DataFrame(client.get(f"/v1/cohorts/segments?segment={segment}&{QUERY}", headers=auth("acme")).json()["rows"])
        sums = rows.groupby(["cohort_month", "month_number"])[["cohort_size", "retained_users"]].sum()
        assert len(sums) == len(cohorts)
        for key, row in sums.iterrows():
            assert (row["cohort_size"], row["retained_users"]) == (
                cohorts[key]["cohort_size"], cohorts[key]["retained_users"]), (segment, key)


def test_csv(client, engine, two_segmented_tenants):
    response = client.get(f"/v1/cohorts/segments?segment=source&{QUERY}&format=csv", headers=auth("acme"))
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert f'filename="cohorts_source_{FIRST:%Y-%m}_{TODAY:%Y-%m}.csv"' in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert list(rows[0]) == ["cohort_month", "value", "month_number", "cohort_size", "retained_users",
                             "retention_rate", "revenue", "ltv", "currency"]
    assert _keyed([{**r, "month_number": int(r["month_number"]), "cohort_size": int(r["cohort_size"]),
                    "retained_users": int(r["retained_users"])} for r in rows]) == _table(engine, "acme", "source")


def test_another_tenants_rows_never_appear(client, engine, db_url, two_segmented_tenants):
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE user_cohort_segments SET value = 'globex-only' "
                             "WHERE tenant_id = 'globex' AND value = 'ads'"))
    acme = client.get(f"/v1/cohorts/segments?segment=source&{QUERY}", headers=auth("acme")).json()
    assert {r["value"] for r in acme["rows"]} == {"ads", "organic"}
    assert _keyed(acme["rows"]) == _table(engine, "acme", "source")
    globex = client.get(f"/v1/cohorts/segments?segment=source&{QUERY}", headers=auth("globex")).json()
    assert {r["value"] for r in globex["rows"]} == {"globex-only", "organic"}
    assert client.get(f"/v1/cohorts/segments?{QUERY}", headers=auth("initech")).json()["rows"] == []
    # Row-level security, not only the query's filter: globex's transaction asking the SQL for
    # acme's rows gets none, acme's own gets them.
    for tenant, expected in (("globex", set()), ("acme", {"ads", "organic"})):
        with AnalyticsDatabase(url=db_url).tenant_transaction(tenant) as conn:
            rows = conn.execute(load("cohort_segments"), {"tenant_id": "acme", "segment": "source",
                                                          "date_from": FIRST, "date_to": TODAY}).all()
        assert {row.value for row in rows} == expected, tenant


def test_cached_under_user_cohort_segments_versions(client, engine, two_segmented_tenants):
    """A run of user_cohort_segments advances the versions of the tenants whose rows it changed
    (CacheInvalidation.rows_changed, as test_api_cache.py checks for every aggregate's run): the
    next answer is computed again, another tenant's stays cached."""
    path = f"/v1/cohorts/segments?{QUERY}"

    def size(tenant):
        response = client.get(path, headers=auth(tenant))
        first = [r for r in response.json()["rows"] if r["month_number"] == 0][0]
        return first["cohort_size"], response.headers["x-cache"]

    before, _ = size("acme")
    assert size("acme") == (before, "hit")
    assert size("globex")[1] == "miss"
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE user_cohort_segments SET cohort_size = cohort_size + 1000 WHERE tenant_id = 'acme'"))
    assert size("acme") == (before, "hit")
    assert SEGMENTS_AGGREGATE == "user_cohort_segments"
    CacheInvalidation().rows_changed(SEGMENTS_AGGREGATE, ["acme"])
    assert size("acme") == (before + 1000, "miss")
    assert size("globex")[1] == "hit"


@pytest.mark.parametrize(
    "query, parameter",
    [
        ("segment=interval", "segment"),
        ("segment=first_plan", "segment"),
        ("segment=plan&from=2025-13", "from"),
        ("segment=plan&from=2020-01&to=2025-12", "from"),
        ("segment=plan&format=xml", "format"),
        ("segment=plan&period_type=month", "period_type"),
    ],
)
def test_bad_parameters_get_400_naming_them(client, query, parameter):
    response = client.get(f"/v1/cohorts/segments?{query}", headers=auth("acme"))
    assert response.status_code == 400, response.text
    assert response.json()["parameter"] == parameter
