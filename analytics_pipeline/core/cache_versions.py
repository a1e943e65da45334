"""Data versions of the aggregates, in Redis: the key scheme that readers' caches are built on,
and the resource with which the pipeline advances them.

Each (aggregate, tenant) has a version token; a reader (the Dashboard API, api/cache.py) puts the
tokens of the aggregate it read, for the tenant and for all tenants, into its cache keys. A run of
an aggregate is given a `CacheInvalidation` resource and, once its transaction has committed,
advances the tokens of the tenants whose rows it changed, so that a request after the run never
finds the previous numbers. The pipeline knows the key scheme, not its readers.

A token is a fresh random value, never a counter, so that a token lost (Redis restarted, a key
evicted) can never come back and match an old entry. Failing to reach Redis is logged and never
fails a run: cached entries then expire after their TTL.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Iterable

import dagster as dg
import redis
from pydantic import Field

from .redis_server import resolve_redis_url, sync_client
from .settings import ConfigError

logger = logging.getLogger(__name__)

ALL_TENANTS = "*"
DEFAULT_PREFIX = "analytics:"


def cache_prefix() -> str:
    """Prefix of every key the project writes to Redis (`API_CACHE_PREFIX`, default
    `analytics:`), so that several deployments or test runs can share one server."""
    return os.environ.get("API_CACHE_PREFIX") or DEFAULT_PREFIX


def version_key(aggregate_name: str, tenant_id: str, prefix: str | None = None) -> str:
    return f"{prefix if prefix is not None else cache_prefix()}version:{aggregate_name}:{tenant_id}"


def new_token() -> str:
    return secrets.token_hex(8)


class CacheInvalidation(dg.ConfigurableResource):
    """Advances the data versions of the tenants whose rows a run changed (see the module).

    `redis_url` defaults to `REDIS_URL`, else the embedded server when it runs (with neither,
    there is no cache to invalidate); `prefix` to `API_CACHE_PREFIX`."""

    redis_url: str | None = Field(
        default=None, description="redis:// URL; defaults to REDIS_URL, else the embedded server if it runs."
    )
    prefix: str | None = Field(default=None, description="Key prefix; defaults to API_CACHE_PREFIX.")

    def rows_changed(self, aggregate_name: str, tenant_ids: Iterable[str] | None, log=None) -> bool:
        """Give new version tokens to `aggregate_name` of `tenant_ids` (None: of every tenant), so
        that cached responses computed from the previous rows are no longer found. Returns
        whether Redis took them. `log` (a Dagster context's log) also hears of a failure."""
        tenants = [ALL_TENANTS] if tenant_ids is None else sorted(set(tenant_ids))
        try:
            url = self.redis_url or resolve_redis_url(start_embedded=False)
            if url is None or not tenants:
                return True
            prefix = self.prefix if self.prefix is not None else cache_prefix()
            pipe = sync_client(url).pipeline(transaction=False)
            for tenant_id in tenants:
                pipe.set(version_key(aggregate_name, tenant_id, prefix), new_token())
            pipe.execute()
            return True
        except (redis.RedisError, OSError, ConfigError) as exc:
            message = (
                f"could not advance the API cache versions of {aggregate_name} for {len(tenants)} tenant(s): "
                f"{type(exc).__name__}: {exc}; cached responses expire within their TTL"
            )
            logger.warning(message)
            if log is not None:
                log.warning(message)
            return False
