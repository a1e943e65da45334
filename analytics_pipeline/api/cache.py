"""The response cache in Redis: one entry per (tenant, aggregate version, request), with a TTL,
a size bound, and one computation per key at a time.

A key is `<prefix>cache:<aggregate>:<tenant>:<tenant's version>.<all tenants' version>:<request
digest>` (analytics_pipeline/core/cache_versions.py). On a miss, the first request takes a lock on the key and computes; the
others wait for its entry instead of all querying PostgreSQL at once, and one that takes the lock
reads the entry again before computing (the holder before it may just have stored it). Whenever
Redis fails or does not answer within `SOCKET_TIMEOUT_SECONDS`, the request is answered from
PostgreSQL, the failure is logged once, and Redis is left alone for `RETRY_SECONDS` (the circuit
is open) so that a down or hung server costs no time per request. `/readyz` reads and sets the same
circuit (`health()`): it says degraded exactly while requests bypass Redis.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable

import redis
import redis.asyncio as aioredis
from redis.exceptions import LockError

from ..core.cache_versions import ALL_TENANTS, new_token, version_key

logger = logging.getLogger(__name__)

RETRY_SECONDS = 5.0
# Redis answers a lookup in well under a millisecond; a server that takes this long is treated as
# down. Short enough that a hung server (SIGSTOP, a full network buffer) delays the requests in
# flight and one /readyz probe by at most this much, long enough for a loaded event loop.
CONNECT_TIMEOUT_SECONDS = 0.5
SOCKET_TIMEOUT_SECONDS = 0.5
# Connections per worker process, and how long a request waits for one of them: a round trip
# holds one for well under a millisecond, or SOCKET_TIMEOUT_SECONDS at most.
MAX_CONNECTIONS = 32
POOL_WAIT_SECONDS = 2.0
LOCK_SECONDS = 10.0
WAIT_STEP_SECONDS = 0.005

HIT, MISS, BYPASS = "hit", "miss", "bypass"

# KEYS: the tenant's and all tenants' version keys of the aggregate; ARGV: the entry key's prefix
# (up to the tenant), the request's digest, and a fresh token. A missing version (first use, or
# lost) starts from the fresh token, never from a value an old entry could carry. Returns the
# entry's key and its body (nil on a miss).
LOOKUP_SCRIPT = """
local versions = {}
for i, version_key in ipairs(KEYS) do
  versions[i] = redis.call('GET', version_key)
  if not versions[i] then
    redis.call('SET', version_key, ARGV[3])
    versions[i] = ARGV[3]
  end
end
local key = ARGV[1] .. versions[1] .. '.' .. versions[2] .. ':' .. ARGV[2]
return {key, redis.call('GET', key)}
"""


class ResponseCache:
    def __init__(self, url: str, prefix: str, ttl_seconds: int, max_entry_bytes: int):
        self.url = url
        self.prefix = prefix
        self.ttl_seconds = ttl_seconds
        self.max_entry_bytes = max_entry_bytes
        # A request waits for a free connection rather than failing when all are in use (200
        # requests on one key at once): a busy pool is load, not a Redis failure.
        self.client = aioredis.Redis.from_pool(aioredis.BlockingConnectionPool.from_url(
            url, max_connections=MAX_CONNECTIONS, timeout=POOL_WAIT_SECONDS,
            socket_connect_timeout=CONNECT_TIMEOUT_SECONDS, socket_timeout=SOCKET_TIMEOUT_SECONDS,
        ))
        self._lookup_script = self.client.register_script(LOOKUP_SCRIPT)
        self._skip_until = 0.0
        self.last_error: str | None = None

    async def close(self) -> None:
        await self.client.aclose()

    @property
    def bypassing(self) -> bool:
        """The circuit is open: requests go to PostgreSQL without trying Redis."""
        return time.monotonic() < self._skip_until

    def _failed(self, exc: Exception) -> None:
        if self.last_error is None:
            logger.warning("Redis at %s failed (%s: %s): answering from PostgreSQL", self.url, type(exc).__name__, exc)
        self.last_error = f"{type(exc).__name__}: {exc}"
        self._skip_until = time.monotonic() + RETRY_SECONDS

    def _recovered(self) -> None:
        if self.last_error is not None:
            logger.warning("Redis at %s answers again: caching resumed", self.url)
        self.last_error = None
        self._skip_until = 0.0

    async def health(self) -> str | None:
        """None when Redis is in use, else what is wrong. While the circuit is open, the error
        that opened it, without trying Redis; else a PING, whose failure opens the circuit and
        whose answer closes it, for requests too."""
        if self.bypassing:
            return self.last_error
        try:
            await asyncio.wait_for(self.client.ping(), SOCKET_TIMEOUT_SECONDS)
        except (redis.RedisError, OSError, TimeoutError) as exc:
            self._failed(exc)
            return self.last_error
        self._recovered()
        return None

    async def _lookup(self, aggregate: str, tenant_id: str, request_key: str) -> tuple[str, bytes | None]:
        """The entry's key under the aggregate's current versions, and its body if cached: one
        round trip (a Lua script reads both versions, giving a fresh token to a missing one,
        then the entry)."""
        digest = hashlib.sha1(request_key.encode()).hexdigest()[:20]
        key, body = await self._lookup_script(
            keys=[version_key(aggregate, tenant_id, self.prefix), version_key(aggregate, ALL_TENANTS, self.prefix)],
            args=[f"{self.prefix}cache:{aggregate}:{tenant_id}:", digest, new_token()],
        )
        return key.decode(), body

    async def get_or_compute(
        self, aggregate: str, tenant_id: str, request_key: str, compute: Callable[[], Awaitable[bytes]]
    ) -> tuple[bytes, str]:
        """The cached body of the request, or `compute()`'s (cached when small enough), and
        whether it was a hit, a miss or a bypass (Redis unavailable)."""
        if self.bypassing:
            return await compute(), BYPASS
        try:
            # The versions are read before the query runs, so that rows read before a
            # materialization committed can only be stored under the versions it replaces.
            key, body = await self._lookup(aggregate, tenant_id, request_key)
            if body is not None:
                self._recovered()
                return body, HIT
            lock = self.client.lock(f"{key}:lock", timeout=LOCK_SECONDS)
            owner = await lock.acquire(blocking=False)
            if owner:
                # The request that held the lock before may have stored the entry and let go
                # between the lookup and the lock: read it again, or it would be computed twice.
                body = await self.client.get(key)
        except (redis.RedisError, OSError) as exc:
            self._failed(exc)
            return await compute(), BYPASS
        if not owner:
            return await self._wait_for(key, compute)
        try:
            if body is not None:
                return body, HIT
            body = await compute()
            if len(body) <= self.max_entry_bytes:
                try:
                    await self.client.set(key, body, ex=self.ttl_seconds)
                except (redis.RedisError, OSError) as exc:
                    self._failed(exc)
                    return body, BYPASS
            self._recovered()
            return body, MISS
        finally:
            if not self.bypassing:  # else Redis just failed: the lock's timeout frees it
                try:
                    await lock.release()
                except (LockError, redis.RedisError, OSError):
                    pass  # expired or unreachable: its timeout frees it

    async def _wait_for(self, key: str, compute: Callable[[], Awaitable[bytes]]) -> tuple[bytes, str]:
        """Another request computes this key: take its entry when it lands; compute it here
        only if that request gave up (its lock is gone) or takes longer than the lock's timeout."""
        deadline = time.monotonic() + LOCK_SECONDS
        step = WAIT_STEP_SECONDS
        try:
            while time.monotonic() < deadline:
                await asyncio.sleep(step)
                step = min(step * 2, 0.1)
                # Both in one MULTI: the holder stores the entry before it lets go of the lock, so
                # no lock means the entry is there, unless the holder gave up.
                body, locked = await self.client.pipeline(transaction=True).get(key).exists(f"{key}:lock").execute()
                if body is not None:
                    return body, HIT
                if not locked:
                    break
        except (redis.RedisError, OSError) as exc:
            self._failed(exc)
            return await compute(), BYPASS
        return await compute(), MISS
