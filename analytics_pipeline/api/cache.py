"""The response cache in Redis: one entry per (tenant, aggregate version, request), with a TTL,
a size bound, and one computation per key at a time.

A key is `<prefix>cache:<aggregate>:<tenant>:<tenant's version>.<all tenants' version>:<request
digest>` (analytics_pipeline/core/cache_versions.py). On a miss, the first request takes a lock on the key and computes; the
others wait for its entry instead of all querying PostgreSQL at once. Whenever Redis fails, the
request is answered from PostgreSQL, the failure is logged once, and Redis is left alone for
`RETRY_SECONDS` so that a down server costs no time per request; `/readyz` reports it.
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
        # Generous enough for a busy server; a dead one refuses at once, and a hung one is skipped
        # for RETRY_SECONDS after its first timeout.
        self.client = aioredis.Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=2.5)
        self._lookup_script = self.client.register_script(LOOKUP_SCRIPT)
        self._skip_until = 0.0
        self.last_error: str | None = None

    async def close(self) -> None:
        await self.client.aclose()

    @property
    def degraded(self) -> bool:
        return self.last_error is not None

    def _failed(self, exc: Exception) -> None:
        if self.last_error is None:
            logger.warning("Redis at %s failed (%s: %s): answering from PostgreSQL", self.url, type(exc).__name__, exc)
        self.last_error = f"{type(exc).__name__}: {exc}"
        self._skip_until = time.monotonic() + RETRY_SECONDS

    def _recovered(self) -> None:
        if self.last_error is not None:
            logger.warning("Redis at %s answers again: caching resumed", self.url)
        self.last_error = None

    async def ping(self) -> str | None:
        """None when Redis answers, else what is wrong (and the cache bypasses it for a while)."""
        try:
            await self.client.ping()
        except (redis.RedisError, OSError) as exc:
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
        if time.monotonic() < self._skip_until:
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
        except (redis.RedisError, OSError) as exc:
            self._failed(exc)
            return await compute(), BYPASS
        if owner:
            try:
                body = await compute()
                if len(body) <= self.max_entry_bytes:
                    await self.client.set(key, body, ex=self.ttl_seconds)
            except (redis.RedisError, OSError) as exc:
                self._failed(exc)
                return body, BYPASS
            finally:
                try:
                    await lock.release()
                except (LockError, redis.RedisError, OSError):
                    pass  # expired or unreachable: its timeout frees it
            self._recovered()
            return body, MISS
        return await self._wait_for(key, compute)

    async def _wait_for(self, key: str, compute: Callable[[], Awaitable[bytes]]) -> tuple[bytes, str]:
        """Another request computes this key: take its entry when it lands; compute it here
        only if that request gave up (its lock is gone) or takes longer than the lock's timeout."""
        deadline = time.monotonic() + LOCK_SECONDS
        step = WAIT_STEP_SECONDS
        try:
            while time.monotonic() < deadline:
                await asyncio.sleep(step)
                step = min(step * 2, 0.1)
                body, locked = await self.client.pipeline(transaction=False).get(key).exists(f"{key}:lock").execute()
                if body is not None:
                    return body, HIT
                if not locked:
                    break
        except (redis.RedisError, OSError) as exc:
            self._failed(exc)
            return await compute(), BYPASS
        return await compute(), MISS
