"""How a /v1 endpoint's body leaves: from the response cache (cache.py) or computed in a worker
thread, with the freshness of the aggregate it depends on (freshness.py), as JSON or CSV."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from .cache import BYPASS

# The shape and units of the cached bodies, first in every request's cache key: raised whenever a
# body changes (fields, units), so that an entry written by the API before the change is never
# served after it (2: rates as fractions, `currency`, each KPI's `polarity`; docs/api.md#units).
BODY_FORMAT = "2"


async def answer(request: Request, aggregate: str | None, tenant_id: str, compute: Callable[[], bytes],
                 fmt: str = "json", filename: str | None = None, key: tuple = ()) -> Response:
    """The body from the cache (keyed by the aggregate's versions, the path and `key`: the parsed
    parameters the body depends on, defaults filled in, so that equivalent requests share one
    entry and nothing else a client sends makes a new one), or from `compute` in a worker thread
    (it blocks on PostgreSQL), with the aggregate's freshness in headers and, for JSON, in the
    body. `aggregate` None: not cached, no freshness (the body does not come from an aggregate)."""
    async def run() -> bytes:
        return await run_in_threadpool(compute)

    headers = {"Cache-Control": "private, no-cache"}
    if aggregate is None:
        body, outcome = await run(), BYPASS
    else:
        # Read before the body, so that the time is never later than the data's.
        freshness = await request.app.state.freshness.of(aggregate, tenant_id)
        request_key = "|".join((BODY_FORMAT, request.url.path, fmt, *map(str, key)))
        body, outcome = await request.app.state.cache.get_or_compute(aggregate, tenant_id, request_key, run)
        headers.update(freshness.headers)
        if fmt == "json":
            body = freshness.add_to(body)
    headers["X-Cache"] = outcome
    if fmt == "csv":
        headers["Content-Disposition"] = f'attachment; filename="{filename or "rows"}.csv"'
        return Response(body, media_type="text/csv; charset=utf-8", headers=headers)
    return Response(body, media_type="application/json", headers=headers)
