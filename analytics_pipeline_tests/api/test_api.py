"""The Dashboard API on a real PostgreSQL and a real Redis: authentication, tenant isolation,
parameters, health and docs, the command line. Its figures: test_api_figures.py."""

from __future__ import annotations

import base64
import hashlib
import hmac
import datetime as dt
import json
import logging
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import jwt
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from analytics_pipeline.api.app import create_app
from analytics_pipeline.cli import main

from .api_data import TODAY, two_tenants
from ..api_support import SECRET, api_env, auth, client, redis_prefix, redis_server_url, token
from ..helpers import add_tenant, rows


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _unsigned_token(tenant_id: str) -> str:
    exp = int((dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).timestamp())
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64({'tenant_id': tenant_id, 'exp': exp})}."


# --- authentication -------------------------------------------------------------------------------

BAD_HEADERS = {
    "missing": None,
    "not bearer": "Basic YWxhZGRpbjpvcGVuc2VzYW1l",
    "empty bearer": "Bearer ",
    "malformed": "Bearer not-a-jwt",
    "expired": f"Bearer {token('acme', ttl=dt.timedelta(seconds=-5))}",
    "wrong signature": f"Bearer {token('acme', secret='another-secret-' + 'y' * 40)}",
    "alg none": f"Bearer {_unsigned_token('acme')}",
    "no tenant_id": "Bearer " + jwt.encode({"exp": dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)}, SECRET, algorithm="HS256"),
    "no exp": "Bearer " + jwt.encode({"tenant_id": "acme"}, SECRET, algorithm="HS256"),
}


@pytest.mark.parametrize("case", BAD_HEADERS)
def test_every_bad_token_gets_401_without_echoing_it(client, two_tenants, case):
    header = BAD_HEADERS[case]
    response = client.get("/v1/revenue", headers={"Authorization": header} if header else {})
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    credential = (header or "").partition(" ")[2].strip()
    if credential:
        assert credential not in response.text
    assert "rows" not in response.json()


def test_expired_token_says_so(client):
    response = client.get("/v1/kpis", headers=auth("acme", ttl=dt.timedelta(seconds=-5)))
    assert response.status_code == 401 and "expired" in response.json()["detail"]


def test_a_token_accepted_before_is_refused_once_it_expires(client):
    # The server remembers the tokens it accepted; a remembered one still expires on time.
    expires = int(time.time()) + 2
    header = {"Authorization": f"Bearer {jwt.encode({'tenant_id': 'acme', 'exp': expires}, SECRET)}"}
    assert client.get("/v1/kpis", headers=header).status_code == 200
    assert client.get("/v1/kpis", headers=header).status_code == 200
    time.sleep(max(0.0, expires - time.time()) + 0.05)
    response = client.get("/v1/kpis", headers=header)
    assert response.status_code == 401 and "expired" in response.json()["detail"]


def test_audience_is_checked_when_configured(api_env, db_url, monkeypatch):
    monkeypatch.setenv("API_JWT_AUDIENCE", "dashboard")
    with TestClient(create_app(db_url)) as client:
        assert client.get("/v1/kpis", headers=auth("acme", aud="dashboard")).status_code == 200
        wrong = client.get("/v1/kpis", headers=auth("acme", aud="billing"))
        assert wrong.status_code == 401 and "aud" in wrong.json()["detail"]
        assert client.get("/v1/kpis", headers=auth("acme")).status_code == 401  # no aud at all


def test_rs256_with_a_public_key_refuses_hs256_signed_with_that_key(api_env, db_url, monkeypatch, tmp_path):
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    key_file = tmp_path / "public.pem"
    key_file.write_text(public_pem)
    monkeypatch.delenv("API_JWT_SECRET")
    monkeypatch.setenv("API_JWT_PUBLIC_KEY", str(key_file))
    with TestClient(create_app(db_url)) as client:
        signed = jwt.encode({"tenant_id": "acme", "exp": dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)},
                            private, algorithm="RS256")
        assert client.get("/v1/kpis", headers={"Authorization": f"Bearer {signed}"}).status_code == 200
        # The classic confusion: an HS256 token whose "secret" is the public key.
        header, payload = _b64({"alg": "HS256", "typ": "JWT"}), _b64({"tenant_id": "acme", "exp": 4102444800})
        signature = hmac.new(public_pem.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
        forged = f"{header}.{payload}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"
        assert client.get("/v1/kpis", headers={"Authorization": f"Bearer {forged}"}).status_code == 401


# --- tenant isolation -------------------------------------------------------------------------------


def test_a_token_reads_only_its_tenants_rows(client, engine, two_tenants):
    since = (TODAY - dt.timedelta(days=29)).isoformat()
    for tenant_id in ("acme", "globex"):
        body = client.get(f"/v1/revenue?period_type=day&from={since}", headers=auth(tenant_id)).json()
        with engine.connect() as conn:
            expected = rows(conn, "SELECT period_start, mrr FROM revenue_aggregates WHERE tenant_id = :t "
                            "AND period_type = 'day' AND period_start >= :s ORDER BY period_start", t=tenant_id, s=since)
        assert {r["tenant_id"] for r in body["rows"]} == {tenant_id}
        assert [(r["period_start"], Decimal(str(r["mrr"]))) for r in body["rows"]] == [
            (e["period_start"].isoformat(), e["mrr"]) for e in expected
        ]
        for path in ("/v1/cohorts", "/v1/tournaments?period_type=month"):
            assert {r.get("tenant_id", tenant_id) for r in client.get(path, headers=auth(tenant_id)).json()["rows"]} == {tenant_id}
    # A tenant with no rows sees none of the others'.
    assert client.get("/v1/revenue", headers=auth("initech")).json()["rows"] == []
    assert client.get("/v1/cohorts", headers=auth("initech")).json()["rows"] == []


def test_reports_and_their_deliveries_are_the_tenants_own(client, engine):
    with engine.begin() as conn:
        for tenant_id in ("acme", "globex"):
            add_tenant(conn, tenant_id)
            conn.execute(sa.text(
                "INSERT INTO scheduled_reports (id, tenant_id, name, report_type, frequency, recipients, next_run_at) "
                "VALUES (:id, :t, :name, 'revenue_summary', 'weekly', ARRAY['cfo@example.com'], '2030-01-01')"
            ), {"id": f"r-{tenant_id}", "t": tenant_id, "name": f"{tenant_id} weekly"})
            for day in range(1, 13):
                conn.execute(sa.text(
                    "INSERT INTO report_deliveries (report_id, tenant_id, scheduled_for, status) "
                    "VALUES (:r, :t, :at, 'sent')"
                ), {"r": f"r-{tenant_id}", "t": tenant_id, "at": dt.datetime(2025, 1, day, 8)})
    body = client.get("/v1/reports", headers=auth("acme")).json()
    assert [r["name"] for r in body["reports"]] == ["acme weekly"]
    deliveries = body["reports"][0]["deliveries"]
    assert len(deliveries) == 10  # the ten most recent of twelve, newest first
    assert deliveries[0]["scheduled_for"].startswith("2025-01-12T08:00")
    assert deliveries[-1]["scheduled_for"].startswith("2025-01-03T08:00")


# --- parameters ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, parameter",
    [
        ("/v1/revenue?period_type=fortnight", "period_type"),
        ("/v1/revenue?from=2025-03-01&to=2025-02-01", "from"),
        ("/v1/revenue?period_type=day&from=2020-01-01&to=2025-01-01", "from"),
        ("/v1/revenue?from=2025-02-30", "from"),
        ("/v1/revenue?to=yesterday", "to"),
        ("/v1/revenue?format=xml", "format"),
        ("/v1/tournaments?period_type=decade", "period_type"),
        ("/v1/cohorts?from=2025-13", "from"),
        ("/v1/cohorts?from=2015-01&to=2025-01", "from"),
        ("/v1/revenue/bridge?to=2999-01-01", "to"),
        ("/v1/kpis?day=01/02/2025", "day"),
        # Near year 1: Python's date arithmetic overflowed, or PostgreSQL refused "date too small".
        ("/v1/revenue?to=0001-01-05", "to"),
        ("/v1/revenue?period_type=year&to=0001-06-01", "to"),
        ("/v1/kpis?day=0001-01-01", "day"),
        ("/v1/cohorts?to=0001-01", "to"),
        ("/v1/revenue/bridge?from=0001-01-01&to=0001-01-01", "to"),
        ("/v1/tournaments?from=0001-01-01&to=2025-01-02", "from"),
        # Near year 9999: the period after, or the end of the period, is past Python's last date.
        ("/v1/kpis?day=9999-12-31", "day"),
        ("/v1/kpis?period_type=quarter&day=9999-11-30&compare=complete", "day"),
        ("/v1/revenue?period_type=year&from=9999-01-01&to=9999-12-31", "to"),
        ("/v1/cohorts?from=9999-01&to=9999-12", "to"),
        # Just outside the range: the first day before 2000, the day after 2999.
        ("/v1/revenue?from=1999-12-31&to=2000-01-01", "from"),
        ("/v1/kpis?day=3000-01-01", "day"),
        # ISO forms fromisoformat reads but a date parameter is not: basic, week date, signed year.
        ("/v1/revenue?to=20250131", "to"),
        ("/v1/kpis?day=2025-W05-1", "day"),
        ("/v1/cohorts?from=%2B2025-01", "from"),
        ("/v1/kpis?compare=whole", "compare"),
    ],
)
def test_bad_parameters_get_400_naming_them(client, path, parameter):
    response = client.get(path, headers=auth("acme"))
    assert response.status_code == 400, response.text
    assert response.json()["parameter"] == parameter
    assert response.json()["detail"].startswith(f"{parameter}: ")


# --- health, docs, the page ------------------------------------------------------------------------


def test_healthz_and_readyz(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}


def test_readyz_is_not_ready_on_a_database_without_the_schema(api_env, empty_db_url, caplog):
    with caplog.at_level(logging.WARNING), TestClient(create_app(empty_db_url)) as client:
        response = client.get("/readyz")
    # The unauthenticated body names the dependency only; what is wrong with it is in the log.
    assert (response.status_code, response.json()) == (503, {"status": "not ready", "failing": ["database"]})
    assert "analytics-pipeline db upgrade" in caplog.text


class SilentListener:
    """A TCP listener that accepts every connection and never sends a byte: a database whose
    server is hung (stopped, or its host gone quiet behind a live load balancer). Records when
    each connection came."""

    def __init__(self):
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.opened: list[float] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self.opened.append(time.monotonic())
            threading.Thread(target=self._hold, args=(connection,), daemon=True).start()

    def _hold(self, connection):
        with connection:
            while connection.recv(4096):  # the client's first message, then nothing until it closes
                pass

    def close(self):
        self.socket.close()


def test_a_hung_database_keeps_one_probe_thread_waiting_and_not_for_long(api_env):
    """A database that accepts connections and never answers: /readyz says not ready within a
    second; behind it one probe at a time waits, on a connection of its own that it gives up
    within libpq's least connect timeout (2 s), not the API's 10 s, however many probes come:
    its worker thread is free again within 3 s."""
    listener = SilentListener()
    try:
        with TestClient(create_app(f"postgresql://postgres@127.0.0.1:{listener.port}/hung")) as client:
            readiness = client.app.state.readiness
            started = time.monotonic()
            with ThreadPoolExecutor(8) as pool:
                answers = list(pool.map(lambda _: client.get("/readyz"), range(8)))
            assert time.monotonic() - started < 2.0
            assert {(a.status_code, a.json()["status"]) for a in answers} == {(503, "not ready")}
            assert len(listener.opened) == 1 and readiness.probing  # one probe, still waiting
            while readiness.probing:
                assert time.monotonic() - listener.opened[0] < 3.0, "the probe's thread is still waiting"
                time.sleep(0.05)
            # The next probe tries again, on a new connection.
            assert client.get("/readyz").status_code == 503
            assert len(listener.opened) == 2
    finally:
        listener.close()


def test_docs_and_page_load_only_local_assets(client):
    docs = client.get("/docs").text
    assert "cdn" not in docs.lower() and "https://" not in docs
    for asset in ("/static/swagger-ui/swagger-ui-bundle.js", "/static/swagger-ui/swagger-ui.css"):
        assert asset in docs and client.get(asset).status_code == 200
    page = client.get("/").text
    assert "https://" not in page and "http://" not in page
    assert client.get("/static/vendor/plotly.min.js").content.startswith(b"/**")
    schema = client.get("/openapi.json").json()
    assert {"/v1/revenue", "/v1/revenue/segments", "/v1/revenue/bridge", "/v1/kpis", "/v1/cohorts", "/v1/tournaments",
            "/v1/reports"} <= set(schema["paths"])


# --- the command line ----------------------------------------------------------------------------------


def test_api_token_mints_a_token_the_api_accepts(client, monkeypatch):
    result = CliRunner().invoke(main, ["api", "token", "--tenant", "acme", "--ttl", "2h"])
    assert result.exit_code == 0, result.output
    minted = result.output.strip()
    claims = jwt.decode(minted, SECRET, algorithms=["HS256"])
    assert claims["tenant_id"] == "acme"
    assert 7100 < claims["exp"] - dt.datetime.now(dt.UTC).timestamp() <= 7200
    assert client.get("/v1/kpis", headers={"Authorization": f"Bearer {minted}"}).status_code == 200


@pytest.mark.parametrize(
    "args, env, message",
    [
        (["api", "token", "--tenant", "acme", "--ttl", "soon"], {}, "'--ttl'"),
        (["api", "token", "--tenant", "acme"], {"API_JWT_SECRET": "short"}, "API_JWT_SECRET"),
        (["api"], {"REDIS_URL": "http://localhost:6379"}, "REDIS_URL"),
        (["api"], {"API_WORKERS": "none"}, "API_WORKERS"),
        (["api"], {"API_WORKERS": ""}, "API_WORKERS"),  # empty is not the default: unset is
    ],
)
def test_bad_cli_input_is_one_line_naming_it(api_env, db_url, monkeypatch, args, env, message):
    monkeypatch.setenv("DATABASE_URL", db_url)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0
    assert message in result.output and "Traceback" not in result.output
    assert len([line for line in result.output.splitlines() if line.startswith("Error")]) == 1


@pytest.mark.parametrize("cores, env, expected", [(1, None, 1), (2, None, 2), (16, None, 4), (16, "6", 6), (2, "1", 1)])
def test_the_api_starts_one_worker_per_core_by_default(monkeypatch, cores, env, expected):
    import os

    from analytics_pipeline.api.settings import api_workers

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)))
    if env is None:
        monkeypatch.delenv("API_WORKERS", raising=False)
    else:
        monkeypatch.setenv("API_WORKERS", env)
    assert api_workers() == expected


def test_an_unreachable_database_gets_503_not_500(api_env):
    from ..helpers import free_port

    with TestClient(create_app(f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere")) as client:
        response = client.get("/v1/kpis", headers=auth("acme"))
        assert response.status_code == 503
        assert response.json() == {"detail": "the analytics database is not available"}
        assert client.get("/readyz").status_code == 503
