"""What the API's numbers are in: each KPI's polarity (whether its rise is good news), rates as
fractions (1 = 100 %) in JSON and CSV, and the tenant's currency with every body of amounts, read
under row-level security so that no tenant learns another's (docs/api.md#units)."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import time
from decimal import ROUND_HALF_UP, Decimal

import pytest
import redis
import sqlalchemy as sa
from fastapi.testclient import TestClient

from analytics_pipeline.api.app import create_app
from analytics_pipeline.core.cache_versions import CacheInvalidation
from analytics_pipeline.core.db import tenant_scope

from .api_data import TODAY, two_segmented_tenants, two_tenants
from ..api_support import api_env, auth, client, redis_prefix, redis_server_url
from ..helpers import add_tenant, rows

# Worked out here, not read from core/polarity.py: the figures a business wants down are churn,
# contraction, the churn rates and refunds; every other KPI of /v1/kpis it wants up.
LOWER_IS_BETTER = {"contraction_revenue", "churned_revenue", "churned_customers", "refund_count", "refund_amount",
                   "logo_churn_rate", "gross_mrr_churn_rate", "net_mrr_churn_rate"}
HIGHER_IS_BETTER = {"mrr", "arr", "new_revenue", "expansion_revenue", "reactivation_revenue", "net_new_mrr",
                    "total_revenue", "active_customers", "new_customers", "reactivated_customers", "arpa", "grr",
                    "nrr", "quick_ratio", "ttm_nrr", "ttm_grr"}
AMOUNT_BODIES = ("/v1/revenue?period_type=month", "/v1/revenue/segments?period_type=month", "/v1/revenue/bridge",
                 "/v1/kpis", "/v1/kpis/segments", "/v1/cohorts", "/v1/cohorts/segments",
                 "/v1/tournaments?period_type=month")
CSV_BODIES = ("/v1/revenue?period_type=month", "/v1/revenue/segments?segment=source&period_type=month",
              "/v1/kpis/segments?segment=interval", "/v1/cohorts", "/v1/cohorts/segments?segment=source",
              "/v1/tournaments?period_type=month")


def _set_currency(engine, tenant: str, currency: str) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO organization_settings (organization_id, currency) VALUES (:t, :c) "
            "ON CONFLICT (organization_id) DO UPDATE SET currency = EXCLUDED.currency"
        ), {"t": tenant, "c": currency})


def test_each_kpi_comes_with_its_polarity_and_refunds_are_kpis(client, engine, two_tenants):
    body = client.get("/v1/kpis?compare=complete", headers=auth("acme")).json()
    polarity = {k["kpi"]: k["polarity"] for k in body["kpis"]}
    assert polarity == {**{k: "lower_is_better" for k in LOWER_IS_BETTER},
                        **{k: "higher_is_better" for k in HIGHER_IS_BETTER}}
    # The refunds of the last complete month: the sum of its day rows, as the month defines them.
    kpis = {k["kpi"]: k for k in body["kpis"]}
    month = dt.date.fromisoformat(body["period_start"])
    end = (month + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
    with engine.connect() as conn:
        [days] = rows(conn, "SELECT sum(refund_count) AS n, sum(refund_amount) AS amount FROM revenue_aggregates "
                            "WHERE tenant_id = 'acme' AND period_type = 'day' AND period_start BETWEEN :f AND :l",
                      f=month, l=end)
    assert days["n"] > 0
    assert (kpis["refund_count"]["unit"], kpis["refund_count"]["current"]) == ("count", days["n"])
    assert (kpis["refund_amount"]["unit"], Decimal(str(kpis["refund_amount"]["current"]))) == ("amount", days["amount"])


def _fraction(part: int, whole: int) -> Decimal:
    return (Decimal(part) / Decimal(whole)).quantize(Decimal("0.0001"), ROUND_HALF_UP)


def test_rates_are_fractions_in_json_and_csv(client, two_tenants):
    """retention_rate and completion_rate as /v1/kpis gives its ratios: 1 = 100 %."""
    cohorts = client.get("/v1/cohorts", headers=auth("acme")).json()["rows"]
    table = list(csv.DictReader(io.StringIO(client.get("/v1/cohorts?format=csv", headers=auth("acme")).text)))
    assert cohorts and len(table) == len(cohorts)
    for row, line in zip(cohorts, table, strict=True):
        expected = _fraction(row["retained_users"], row["cohort_size"])
        assert row["retention_rate"] == float(expected), row
        assert Decimal(line["retention_rate"]) == expected, line
    assert {row["retention_rate"] for row in cohorts if row["month_number"] == 0} == {1.0}
    assert any(0 < row["retention_rate"] < 1 for row in cohorts)

    path = "/v1/tournaments?period_type=week"
    tournaments = client.get(path, headers=auth("acme")).json()["rows"]
    table = list(csv.DictReader(io.StringIO(client.get(f"{path}&format=csv", headers=auth("acme")).text)))
    assert tournaments and len(table) == len(tournaments)
    for row, line in zip(tournaments, table, strict=True):
        expected = _fraction(row["completed_count"], row["tournament_count"])
        assert row["completion_rate"] == float(expected), row
        assert Decimal(line["completion_rate"]) == expected, line
    assert all(0 < row["completion_rate"] <= 1 for row in tournaments)


def test_every_body_of_amounts_names_its_tenants_currency(client, engine, two_segmented_tenants):
    """acme bills in EUR; globex has no row, so USD, the documented default; never acme's."""
    _set_currency(engine, "acme", "EUR")
    for tenant, currency in (("acme", "EUR"), ("globex", "USD")):
        for path in AMOUNT_BODIES:
            body = client.get(path, headers=auth(tenant)).json()
            assert body["currency"] == currency, (tenant, path)
        for path in CSV_BODIES:
            sep = "&" if "?" in path else "?"
            table = list(csv.DictReader(io.StringIO(client.get(f"{path}{sep}format=csv", headers=auth(tenant)).text)))
            assert table and {line["currency"] for line in table} == {currency}, (tenant, path)
    assert "currency" not in client.get("/v1/reports", headers=auth("acme")).json()


def test_a_miss_reads_rows_and_currency_in_one_query(client, engine, db_url, two_segmented_tenants):
    """The currency is read by the data query itself: a miss sends PostgreSQL the tenant's two
    settings (role, tenant) and one query; a body without rows still names the currency."""
    from analytics_pipeline.core.db import engine_for

    _set_currency(engine, "acme", "EUR")
    with engine.begin() as conn:
        add_tenant(conn, "initech")
    _set_currency(engine, "initech", "JPY")
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    api_engine = engine_for(db_url)
    sa.event.listen(api_engine, "before_cursor_execute", record)
    try:
        for tenant, path, currency in (("acme", "/v1/revenue?period_type=month", "EUR"),
                                       ("acme", "/v1/kpis/segments", "EUR"),
                                       ("initech", "/v1/cohorts/segments", "JPY"),
                                       ("initech", "/v1/revenue/bridge", "JPY")):
            statements.clear()
            response = client.get(path, headers=auth(tenant))
            assert response.headers["x-cache"] == "miss" and response.json()["currency"] == currency, path
            # Each transaction as analytics_app begins with its role; the freshness reader's
            # (freshness.py, every 2 seconds) is not the miss's.
            transactions: list[list[str]] = []
            for statement in statements:
                if statement.startswith("SET LOCAL ROLE"):
                    transactions.append([])
                transactions[-1].append(statement)
            [read] = [t for t in transactions if not any("aggregate_freshness" in s for s in t)]
            assert len(read) == 3 and "set_config" in read[1], (path, read)
            assert "organization_settings" in read[2]
        assert client.get("/v1/cohorts/segments", headers=auth("initech")).json()["rows"] == []
    finally:
        sa.event.remove(api_engine, "before_cursor_execute", record)


def test_a_tenant_reads_its_own_currency_and_no_other(engine):
    """As analytics_app, the role of the API's transactions (migration 0023)."""
    with engine.begin() as conn:
        for tenant in ("org-a", "org-b", "org-c"):
            add_tenant(conn, tenant)
    _set_currency(engine, "org-a", "EUR")
    _set_currency(engine, "org-b", "JPY")
    read = "SELECT organization_id, currency FROM organization_settings"
    with engine.begin() as conn, tenant_scope(conn, "org-a"):
        assert conn.execute(sa.text(read)).all() == [("org-a", "EUR")]
        assert conn.execute(sa.text(f"{read} WHERE organization_id = 'org-b'")).all() == []
    with engine.begin() as conn, tenant_scope(conn, "org-c"):  # no row: nothing, the default applies
        assert conn.execute(sa.text(read)).all() == []
    with engine.begin() as conn:  # the role without a tenant sees nothing
        conn.execute(sa.text("SET LOCAL ROLE analytics_app"))
        assert conn.execute(sa.text(read)).all() == []
    # Reading only: the platform writes the table.
    for statement in ("UPDATE organization_settings SET currency = 'GBP'",
                      "INSERT INTO organization_settings (organization_id, currency) VALUES ('org-c', 'GBP')",
                      "DELETE FROM organization_settings"):
        with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
            with engine.begin() as conn, tenant_scope(conn, "org-a"):
                conn.execute(sa.text(statement))
    with engine.connect() as conn:
        assert conn.execute(sa.text(f"{read} ORDER BY 1")).all() == [("org-a", "EUR"), ("org-b", "JPY")]
        policies = conn.execute(sa.text(
            "SELECT policyname, cmd, roles::text, qual, with_check FROM pg_policies "
            "WHERE tablename = 'organization_settings'")).all()
        assert policies == [("organization_settings_tenant_isolation", "SELECT", "{analytics_app}",
                             "(organization_id = current_setting('app.tenant_id'::text, true))", None)]


def test_a_currency_change_reaches_cached_answers(api_env, db_url, engine, monkeypatch, two_tenants,
                                                  redis_prefix, redis_server_url):
    """The currency is part of the cached body: a change shows once the entry's TTL has run out,
    or at once when the tenant's versions are advanced (docs/api.md#currency)."""
    def currency(client):
        response = client.get("/v1/kpis", headers=auth("acme"))
        return response.json()["currency"], response.headers["x-cache"]

    monkeypatch.setenv("API_CACHE_TTL_SECONDS", "120")
    with TestClient(create_app(db_url)) as client:
        assert currency(client) == ("USD", "miss")
        _set_currency(engine, "acme", "EUR")
        assert currency(client) == ("USD", "hit")  # until the TTL, or:
        assert CacheInvalidation(redis_url=redis_server_url, prefix=redis_prefix).rows_changed(
            "revenue_aggregates", ["acme"])
        assert currency(client) == ("EUR", "miss")

    monkeypatch.setenv("API_CACHE_TTL_SECONDS", "1")
    with TestClient(create_app(db_url)) as client:
        CacheInvalidation(redis_url=redis_server_url, prefix=redis_prefix).rows_changed("revenue_aggregates", ["acme"])
        assert currency(client) == ("EUR", "miss")
        _set_currency(engine, "acme", "GBP")
        time.sleep(1.5)
        assert currency(client) == ("GBP", "miss")


def test_an_unsubscribe_is_not_listed_as_a_delivery(client, engine, two_tenants):
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO report_deliveries (report_id, tenant_id, scheduled_for, trigger, status, attempts, "
            "recipients, sent_at) VALUES ('acme-weekly', 'acme', CAST(:today AS date) + time '09:00', "
            "'unsubscribe', 'unsubscribed', 0, ARRAY['finance@example.com'], CAST(:today AS date) + time '09:00')"
        ), {"today": TODAY})
    [report] = client.get("/v1/reports", headers=auth("acme")).json()["reports"]
    assert [(d["trigger"], d["status"]) for d in report["deliveries"]] == [("schedule", "sent")]


def test_an_entry_of_the_previous_body_format_is_not_served(client, two_tenants, redis_prefix, redis_server_url):
    """An entry cached before the bodies changed (rates in percent, no currency) under the same
    versions and request: a request after the change computes the new body instead."""
    path = "/v1/cohorts"
    fresh = client.get(path, headers=auth("acme"))
    assert fresh.headers["x-cache"] == "miss"
    server = redis.Redis.from_url(redis_server_url)
    [entry] = [k.decode() for k in server.scan_iter(match=f"{redis_prefix}cache:user_cohorts:acme:*")]
    month = dt.date.fromisoformat(fresh.json()["to"])
    first = dt.date.fromisoformat(fresh.json()["from"])
    # The key the API wrote before, without the format: the path, the format and the parameters.
    before = "|".join((path, "json", str(first), str(month)))
    old_key = entry.rsplit(":", 1)[0] + ":" + hashlib.sha1(before.encode()).hexdigest()[:20]
    server.delete(entry)
    server.set(old_key, b'{"tenant_id": "acme", "rows": [{"retention_rate": 100.0}]}', ex=60)
    again = client.get(path, headers=auth("acme"))
    assert again.headers["x-cache"] == "miss"
    assert again.json()["currency"] == "USD" and again.json()["rows"] == fresh.json()["rows"]
