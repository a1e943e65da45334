"""Data versions of the aggregates behind the API's cached responses.

Each (aggregate, tenant) has a version token in Redis; every cache key carries the tokens of the
aggregate it was computed from, for the tenant and for all tenants. A materialization advances
the tokens of the tenants whose rows it changed once its transaction has committed, so a request
after the run never finds the previous numbers. A token is a fresh random value, never a counter,
so that a token lost (Redis restarted, a key evicted) can never come back and match an old entry.

Importable without FastAPI: the aggregate assets call `advance_versions`. Failing to reach Redis
is logged and never fails a run: the entries then expire after API_CACHE_TTL_SECONDS.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable

import redis

from ..settings import ConfigError
from .config import cache_prefix

logger = logging.getLogger(__name__)

ALL_TENANTS = "*"

# The aggregates whose runs advance versions (aggregate_runs.after_commit).
AGGREGATES = ("revenue_aggregates", "tournament_aggregates", "user_cohorts")


def version_key(aggregate_name: str, tenant_id: str, prefix: str | None = None) -> str:
    return f"{prefix if prefix is not None else cache_prefix()}version:{aggregate_name}:{tenant_id}"


def new_token() -> str:
    return secrets.token_hex(8)


def advance_versions(aggregate_name: str, tenant_ids: Iterable[str] | None, log=None) -> bool:
    """Give new version tokens to `aggregate_name` of `tenant_ids` (None: of every tenant), so
    that cached responses computed from the previous rows are no longer found.

    Returns whether Redis took them. With REDIS_URL unset and no embedded server running there is
    no cache to invalidate. `log` (a Dagster context's log) also hears of a failure.
    """
    from .redis_server import resolve_redis_url, sync_client

    if aggregate_name not in AGGREGATES:
        raise ValueError(f"unknown aggregate {aggregate_name!r}; one of {', '.join(AGGREGATES)}")
    tenants = [ALL_TENANTS] if tenant_ids is None else sorted(set(tenant_ids))
    try:
        url = resolve_redis_url(start_embedded=False)
        if url is None or not tenants:
            return True
        pipe = sync_client(url).pipeline(transaction=False)
        for tenant_id in tenants:
            pipe.set(version_key(aggregate_name, tenant_id), new_token())
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
