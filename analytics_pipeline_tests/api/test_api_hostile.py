"""The Dashboard API under hostile input: parameters at the edges of the calendar, token claims
the database cannot hold, values it refuses, unknown parameters and the cache key, the browser
security headers.
The property-based fuzz of the whole OpenAPI document: test_api_fuzz.py."""

from __future__ import annotations

import http.client
import urllib.parse

import pytest
import redis
import sqlalchemy as sa
from fastapi.testclient import TestClient

from analytics_pipeline.api.app import create_app

from .api_data import TODAY, two_tenants
from ..api_support import api_env, auth, client, redis_prefix, redis_server_url, served, token

# --- parameters at the edges of the calendar (the refused ones: test_api.py) -------------------------


@pytest.mark.parametrize(
    "path",
    [
        # The first and last days a parameter may name: the periods before and after them are
        # still worked out without an error, and a default range stops at the first day.
        "/v1/revenue?to=2000-01-05",
        "/v1/revenue?period_type=year&to=2000-06-01",
        "/v1/kpis?day=2000-01-01",
        "/v1/kpis?period_type=year&day=2000-01-01&compare=complete",
        "/v1/kpis?period_type=quarter&day=2999-12-31",
        "/v1/cohorts?to=2000-01",
        "/v1/cohorts?from=2999-12&to=2999-12",
        "/v1/revenue/bridge?from=2000-01-01&to=2000-01-01",
        "/v1/tournaments?period_type=week&from=2999-12-01&to=2999-12-31",
        "/v1/revenue/segments?segment=source&period_type=year&to=2000-06-01",
        "/v1/revenue/segments?segment=interval&from=2999-12-01&to=2999-12-31",
    ],
)
def test_the_first_and_last_days_answer(client, path):
    response = client.get(path, headers=auth("acme"))
    assert response.status_code == 200, response.text


def test_a_default_range_does_not_start_before_the_first_day(client):
    body = client.get("/v1/revenue?period_type=month&to=2000-03-31", headers=auth("acme")).json()
    assert (body["from"], body["to"]) == ("2000-01-01", "2000-03-31")


# --- token claims the database cannot hold ----------------------------------------------------------------

UNHOLDABLE = {
    "NUL": "acme\x00",
    "over-long": "a" * 256,
    "lone surrogate": "acme\ud800",
    "empty": "",
    "not a string": 42,
}


@pytest.mark.parametrize("case", UNHOLDABLE)
def test_a_tenant_claim_the_database_cannot_hold_is_401(client, case):
    response = client.get("/v1/kpis", headers=auth(UNHOLDABLE[case]))
    assert response.status_code == 401, response.text
    assert "tenant_id" in response.json()["detail"]


def test_the_longest_tenant_claim_is_accepted(client):
    assert client.get("/v1/kpis", headers=auth("a" * 255)).status_code == 200


def test_a_refused_claim_keeps_the_connection_alive(api_env, db_url):
    """A NUL in a signed claim once gave a 500 and reset the keep-alive connection: the next
    request on it failed. Now it is a 401, and the connection serves the next request."""
    with served(create_app(db_url)) as url:
        connection = http.client.HTTPConnection(urllib.parse.urlsplit(url).netloc, timeout=10)
        try:
            for tenant_id, status in (("acme\x00", 401), ("acme", 200), ("a" * 300, 401), ("acme", 200)):
                connection.request("GET", "/v1/kpis", headers={"Authorization": f"Bearer {token(tenant_id)}"})
                response = connection.getresponse()
                response.read()
                assert response.status == status, tenant_id
                assert response.getheader("connection") != "close"
                socket = connection.sock
                assert socket is not None  # not closed by the server's answer
            assert connection.sock is socket
        finally:
            connection.close()


# --- unknown parameters and the cache key ---------------------------------------------------------


@pytest.mark.parametrize(
    "path, unknown",
    [
        ("/v1/revenue?junk=1", ["junk"]),
        ("/v1/revenue?period_type=day&form=2025-01-01", ["form"]),  # a misspelt `from`
        ("/v1/kpis?day=2025-01-01&zzz=1&aaa=2", ["aaa", "zzz"]),
        ("/v1/cohorts?period_type=month", ["period_type"]),  # another endpoint's parameter
        ("/v1/reports?x=1", ["x"]),
        ("/v1/revenue/bridge?FROM=2025-01-01", ["FROM"]),
    ],
)
def test_unknown_parameters_get_400_naming_them(client, path, unknown):
    response = client.get(path, headers=auth("acme"))
    assert response.status_code == 400, response.text
    body = response.json()
    assert (body["parameter"], body["unknown"]) == (unknown[0], unknown)
    assert body["detail"].startswith(f"{unknown[0]}: unknown parameter")
    assert all(name in body["detail"] for name in unknown)


def _entries(server, prefix) -> int:
    return sum(1 for _ in server.scan_iter(match=f"{prefix}cache:*", count=1000) if not _.endswith(b":lock"))


def test_equivalent_requests_share_one_cache_entry(client, two_tenants, redis_prefix, redis_server_url):
    """The key is the parsed parameters with their defaults filled in: the parameters' order, an
    empty value for a default, an explicit default and a format's case do not make new entries,
    nor do parameters the endpoint refuses."""
    server = redis.Redis.from_url(redis_server_url)
    today, start = TODAY.isoformat(), TODAY.replace(day=1).isoformat()
    groups = [
        [f"/v1/revenue?period_type=day&from={start}&to={today}", f"/v1/revenue?to={today}&from={start}",
         f"/v1/revenue?from={start}&period_type=day", f"/v1/revenue?from={start}&to=&format=json",
         f"/v1/revenue?from={start}&format=json&period_type="],
        [f"/v1/revenue?from={start}&format=csv", f"/v1/revenue?format=csv&from={start}&to={today}"],
        ["/v1/kpis", f"/v1/kpis?day={today}", "/v1/kpis?period_type=month&compare=to_date", "/v1/kpis?day=&compare="],
        ["/v1/cohorts", f"/v1/cohorts?to={today[:7]}", f"/v1/cohorts?to={today}"],
        ["/v1/revenue/segments", "/v1/revenue/segments?segment=plan", f"/v1/revenue/segments?segment=&to={today}"],
    ]
    for count, group in enumerate(groups, start=1):
        outcomes = [client.get(path, headers=auth("acme")).headers["x-cache"] for path in group]
        assert outcomes == ["miss"] + ["hit"] * (len(group) - 1), group
        assert _entries(server, redis_prefix) == count
    for i in range(20):
        assert client.get(f"/v1/revenue?from={start}&junk={i}", headers=auth("acme")).status_code == 400
    assert _entries(server, redis_prefix) == len(groups)


# --- headers of every response ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/docs", "/static/dashboard.js", "/static/docs.js", "/openapi.json",
                                  "/static/swagger-ui/swagger-ui-bundle.js", "/v1/kpis", "/v1/revenue?junk=1",
                                  "/healthz", "/readyz", "/nowhere"])
def test_every_response_carries_the_security_headers(client, path):
    response = client.get(path, headers=auth("acme"))
    policy = {d.split(" ", 1)[0]: d.split(" ", 1)[1] for d in response.headers["content-security-policy"].split("; ")}
    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'"  # no 'unsafe-inline', no 'unsafe-eval'
    assert policy["frame-ancestors"] == "'none'"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"


def test_the_docs_page_has_no_inline_script(client):
    page = client.get("/docs").text
    assert "<script>" not in page and "<script " in page
    assert all('src="/static/' in tag for tag in page.split("<script")[1:])


def test_the_openapi_document_lists_the_errors_the_api_answers(api_env, db_url):
    with TestClient(create_app(db_url)) as client:
        paths = client.get("/openapi.json").json()["paths"]
    for path in ("/v1/revenue", "/v1/revenue/segments", "/v1/revenue/bridge", "/v1/kpis", "/v1/cohorts",
                 "/v1/tournaments", "/v1/reports"):
        responses = paths[path]["get"]["responses"]
        assert {"200", "400", "401", "503"} <= set(responses) and "422" not in responses, path


def test_a_value_the_database_refuses_is_a_400_not_a_500(api_env, db_url):
    """Whatever a request makes PostgreSQL refuse as data (SQLSTATE class 22: out of range, not a
    number, a date Python cannot hold) is the request's fault: 400, and the server goes on."""
    app = create_app(db_url)

    @app.get("/v1/refused")
    def refused(value: str):
        with app.state.database.tenant_transaction("acme") as conn:
            return conn.execute(sa.text("SELECT CAST(:v AS date)"), {"v": value}).scalar_one()

    with TestClient(app, raise_server_exceptions=False) as client:
        for value in ("0001-01-01 BC", "5874898-01-01", "not a date"):
            response = client.get("/v1/refused", params={"value": value})
            assert response.status_code == 400, (value, response.text)
            assert response.json() == {"detail": "request: a value is outside what the database can hold",
                                       "parameter": "request"}
        assert client.get("/v1/refused", params={"value": "2025-01-31"}).json() == "2025-01-31"
