"""When the aggregate behind a response was last materialized, and when its data turns stale
(docs/api.md#freshness).

The pipeline writes `aggregate_freshness` inside each run's transaction (one row per aggregate);
the API reads it as `analytics_app`. Each worker process keeps the table (a row per aggregate) for
`MAX_AGE_SECONDS` and reads it again on the first request after that, one read at a time, so a
cached request still costs one Redis round trip and no PostgreSQL query, and the time it returns
is never more than `MAX_AGE_SECONDS` behind the database. The time is added to the response as it
leaves, never stored in the cached body: a run that changed no tenant's rows advances no cache
version, yet moves this time forward.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import time
from dataclasses import dataclass

import orjson
import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool

from ..core.resources import AnalyticsDatabase
from ..domains import aggregate_freshness
from .queries import load

logger = logging.getLogger(__name__)

MAX_AGE_SECONDS = 2.0


def _iso(value: dt.datetime | None) -> str | None:
    """A naive UTC time as ISO 8601 with `Z`, to the second."""
    return None if value is None else value.isoformat(timespec="seconds") + "Z"


@dataclass(frozen=True)
class Freshness:
    """`updated_at`: when the aggregate's last committed run began computing (UTC; None: never
    materialized). `stale_after`: `updated_at` plus the warn window its domain declares for it
    (domains.aggregate_freshness), the time after which its data is older than the pipeline
    promises. Rendered once per read of the table, not per request."""

    updated_at: dt.datetime | None
    stale_after: dt.datetime | None

    @functools.cached_property
    def headers(self) -> dict[str, str]:
        if self.updated_at is None:
            return {}
        return {"X-Data-Updated-At": _iso(self.updated_at), "X-Data-Stale-After": _iso(self.stale_after)}

    @functools.cached_property
    def _fields(self) -> bytes:
        return orjson.dumps({"data_updated_at": _iso(self.updated_at), "data_stale_after": _iso(self.stale_after)})

    @functools.cached_property
    def _tail(self) -> bytes:
        return b"," + self._fields[1:]  # ,"data_updated_at":...}

    def add_to(self, body: bytes) -> bytes:
        """A JSON object's body with `data_updated_at` and `data_stale_after` appended, without
        parsing it (cached bodies are up to API_CACHE_MAX_ENTRY_BYTES) and with one copy."""
        body = body.rstrip()
        if body == b"{}":
            return self._fields
        return b"".join((memoryview(body)[:-1], self._tail))


NEVER = Freshness(None, None)


class FreshnessReader:
    """The per-process copy of `aggregate_freshness` (see the module)."""

    def __init__(self, database: AnalyticsDatabase, max_age_seconds: float = MAX_AGE_SECONDS):
        self.database = database
        self.max_age_seconds = max_age_seconds
        # The aggregates the domains publish, with their windows; a row of any other is ignored.
        self.windows = aggregate_freshness()
        self._freshness: dict[str, Freshness] = {}
        self._read_at = float("-inf")
        self._lock = asyncio.Lock()
        self._failing = False

    async def of(self, aggregate: str, tenant_id: str) -> Freshness:
        """The aggregate's freshness, read again from PostgreSQL (as `tenant_id`'s
        analytics_app, the only role the API reads as) when the copy is older than the max age."""
        if time.monotonic() - self._read_at >= self.max_age_seconds:
            async with self._lock:
                if time.monotonic() - self._read_at >= self.max_age_seconds:
                    await self._read(tenant_id)
        return self._freshness.get(aggregate, NEVER)

    async def _read(self, tenant_id: str) -> None:
        def read() -> dict[str, Freshness]:
            with self.database.tenant_transaction(tenant_id) as conn:
                return {
                    aggregate: Freshness(updated_at, updated_at + self.windows[aggregate].warn)
                    for aggregate, updated_at in conn.execute(load("freshness"))
                    if aggregate in self.windows
                }

        try:
            self._freshness = await run_in_threadpool(read)
            if self._failing:
                logger.warning("aggregate_freshness can be read again")
            self._failing = False
        except (sa.exc.SQLAlchemyError, OSError) as exc:
            # Keep the last times read: answers from the cache go on, and a run cannot commit a
            # newer time on a database the API cannot reach either, unless only the API is cut off.
            if not self._failing:
                logger.warning("could not read aggregate_freshness (%s): keeping the last times read", exc)
            self._failing = True
        self._read_at = time.monotonic()
