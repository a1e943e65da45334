"""Fixtures of the API tests: a real Redis server, a per-test key prefix on it, tokens, and an
API client on the test's database.

Redis is TEST_REDIS_URL, else the server at 127.0.0.1:6379 where one answers (as on CI), else the
embedded server started under the test session's temporary folder. Tests sharing a server are
kept apart by a key prefix of their own, whose keys are deleted afterwards (never FLUSHALL)."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import threading
import time
import uuid
from collections.abc import Iterator

import jwt
import pytest
import redis
import uvicorn
from fastapi.testclient import TestClient

SECRET = "test-secret-" + "x" * 40


def _answers(url: str) -> bool:
    try:
        with redis.Redis.from_url(url, socket_connect_timeout=0.5) as client:
            return bool(client.ping())
    except (redis.RedisError, OSError):
        return False


@pytest.fixture(scope="session")
def redis_server_url(tmp_path_factory) -> Iterator[str]:
    url = os.environ.get("TEST_REDIS_URL")
    if url:
        yield url
        return
    if _answers("redis://127.0.0.1:6379/0"):
        yield "redis://127.0.0.1:6379/0"
        return
    from analytics_pipeline.core.redis_server import embedded_redis_url, stop_embedded_redis

    home = tmp_path_factory.mktemp("redis")
    yield embedded_redis_url(home)
    stop_embedded_redis(home)


@pytest.fixture
def redis_prefix(redis_server_url, monkeypatch) -> Iterator[str]:
    """REDIS_URL and a key prefix for this test only; its keys are deleted afterwards."""
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    monkeypatch.setenv("REDIS_URL", redis_server_url)
    monkeypatch.setenv("API_CACHE_PREFIX", prefix)
    yield prefix
    with redis.Redis.from_url(redis_server_url) as client:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)


@pytest.fixture
def api_env(monkeypatch, redis_prefix, tmp_path) -> None:
    monkeypatch.setenv("API_JWT_SECRET", SECRET)
    monkeypatch.delenv("API_JWT_PUBLIC_KEY", raising=False)
    monkeypatch.delenv("API_JWT_AUDIENCE", raising=False)
    monkeypatch.setenv("ANALYTICS_HOME", str(tmp_path))


def token(tenant_id: str, ttl: dt.timedelta = dt.timedelta(hours=1), secret: str = SECRET,
          algorithm: str = "HS256", **claims) -> str:
    now = dt.datetime.now(dt.UTC)
    return jwt.encode({"tenant_id": tenant_id, "exp": now + ttl, **claims}, secret, algorithm=algorithm)


def auth(tenant_id: str, **kwargs) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(tenant_id, **kwargs)}"}


@pytest.fixture
def client(api_env, db_url) -> Iterator[TestClient]:
    from analytics_pipeline.api.app import create_app

    with TestClient(create_app(db_url)) as test_client:
        yield test_client


@contextlib.contextmanager
def served(app) -> Iterator[str]:
    """`app` served by uvicorn on a free loopback port, in a thread; its base URL."""
    from .helpers import free_port

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the API did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
