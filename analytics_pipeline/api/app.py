"""The Dashboard API (FastAPI): read-only /v1 endpoints per tenant, health, OpenAPI docs served
from local files, and the dashboard page. `create_app()` builds it; `analytics-pipeline api`
serves it with uvicorn. Endpoints and behaviour: docs/api.md."""

from __future__ import annotations

import contextlib
import logging
from importlib.resources import files
from pathlib import Path

import sqlalchemy as sa
import swagger_ui_bundle
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import HTTPBearer
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from ..core import db
from ..core.cache_versions import cache_prefix
from ..core.redis_server import resolve_redis_url
from ..core.resources import AnalyticsDatabase
from ..core.settings import ConfigError
from ..reports.unsubscribe_routes import unsubscribe_router
from . import params, queries
from .auth import TokenVerifier, Unauthorized
from .cache import BYPASS, ResponseCache
from .settings import cache_max_entry_bytes, cache_ttl_seconds, jwt_settings
from .freshness import FreshnessReader

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
PLOTLY_JS = Path(str(files("plotly") / "package_data" / "plotly.min.js"))
SWAGGER_DIR = Path(swagger_ui_bundle.swagger_ui_path)

# Shown in Swagger UI's "Authorize" dialog; the token itself is read by `require_tenant`.
bearer = HTTPBearer(auto_error=False, description="A JWT with the claims tenant_id and exp (docs/api.md).")


def _error(status: int, detail: str, **extra) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"detail": detail, **extra}, status_code=status, headers=headers)


async def require_tenant(request: Request, _=Depends(bearer)) -> str:
    # async: checking a token takes microseconds, less than a hop to the thread pool would.
    return request.app.state.tokens.tenant_of(request.headers.get("authorization"))


def create_app(database_url: str | None = None) -> FastAPI:
    """The application. The database is `database_url`, else DATABASE_URL, else the embedded
    server; Redis is REDIS_URL, else the embedded server. Settings are read here, so that a bad
    one stops the start with one line."""
    jwt = jwt_settings()
    ttl, max_entry_bytes, prefix = cache_ttl_seconds(), cache_max_entry_bytes(), cache_prefix()
    database = AnalyticsDatabase(url=database_url)
    redis_url = resolve_redis_url()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.cache = ResponseCache(redis_url, prefix, ttl, max_entry_bytes)
        app.state.freshness = FreshnessReader(database)
        try:
            yield
        finally:
            await app.state.cache.close()

    app = FastAPI(
        title="analytics-pipeline Dashboard API",
        version="1",
        summary="Revenue, cohort and tournament aggregates of one tenant per token, read-only.",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.tokens = TokenVerifier(jwt)
    app.state.database = database

    @app.exception_handler(Unauthorized)
    async def unauthorized(request: Request, exc: Unauthorized):
        return _error(401, str(exc))

    @app.exception_handler(params.BadParameter)
    async def bad_parameter(request: Request, exc: params.BadParameter):
        return _error(400, str(exc), parameter=exc.parameter)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        first = exc.errors()[0]
        name = str(first["loc"][-1]) if first.get("loc") else "request"
        return _error(400, f"{name}: {first.get('msg', 'invalid')}", parameter=name)

    @app.exception_handler(db.DatabaseNotReady)
    @app.exception_handler(sa.exc.OperationalError)
    async def database_not_ready(request: Request, exc: Exception):
        logger.warning("answering 503: %s", str(exc).splitlines()[0])
        return _error(503, "the analytics database is not available")

    async def answer(request: Request, aggregate: str | None, tenant_id: str, compute, fmt: str = "json",
                     filename: str | None = None) -> Response:
        """The body from the cache (keyed by the aggregate's versions and the request), or from
        `compute` in a worker thread (it blocks on PostgreSQL), with the aggregate's freshness
        (freshness.py) in headers and, for JSON, in the body."""
        async def run() -> bytes:
            return await run_in_threadpool(compute)

        headers = {"Cache-Control": "private, no-cache"}
        if aggregate is None:
            body, outcome = await run(), BYPASS
        else:
            # Read before the body, so that the time is never later than the data's.
            freshness = await request.app.state.freshness.of(aggregate, tenant_id)
            request_key = f"{request.url.path}?{sorted(request.query_params.multi_items())}"
            body, outcome = await request.app.state.cache.get_or_compute(aggregate, tenant_id, request_key, run)
            headers.update(freshness.headers)
            if fmt == "json":
                body = freshness.add_to(body)
        headers["X-Cache"] = outcome
        if fmt == "csv":
            headers["Content-Disposition"] = f'attachment; filename="{filename or "rows"}.csv"'
            return Response(body, media_type="text/csv; charset=utf-8", headers=headers)
        return Response(body, media_type="application/json", headers=headers)

    @app.get("/v1/revenue", tags=["revenue"])
    async def revenue_series(
        request: Request,
        tenant_id: str = Depends(require_tenant),
        period_type: str | None = Query(None, description="day, week, month, quarter or year (default day)"),
        date_from: str | None = Query(None, alias="from", description="First day, YYYY-MM-DD (default: 90 days, 26 weeks, 24 months, 12 quarters or 5 years before `to`)"),
        date_to: str | None = Query(None, alias="to", description="Last day, YYYY-MM-DD (default today, UTC)"),
        format: str | None = Query(None, description="json (default) or csv"),
    ) -> Response:
        """Every column of revenue_aggregates for the periods overlapping [from, to]."""
        span = params.series_range(period_type, date_from, date_to)
        fmt = params.output_format(format)
        meta = {"period_type": span.period_type, "from": span.date_from, "to": span.date_to}
        return await answer(
            request, "revenue_aggregates", tenant_id,
            lambda: queries.table(database, tenant_id, "revenue_series", fmt, meta, period_type=span.period_type,
                                  date_from=span.date_from, date_to=span.date_to),
            fmt, f"revenue_{span.period_type}_{span.date_from}_{span.date_to}",
        )

    @app.get("/v1/revenue/bridge", tags=["revenue"])
    async def mrr_bridge(
        request: Request,
        tenant_id: str = Depends(require_tenant),
        date_from: str | None = Query(None, alias="from", description="First day, YYYY-MM-DD (default: 89 days before `to`)"),
        date_to: str | None = Query(None, alias="to", description="Last day, YYYY-MM-DD, at most today (default today, UTC)"),
    ) -> Response:
        """The MRR bridge of the days [from, to]: opening MRR, each movement, closing MRR, and
        whether closing - opening = new + reactivation + expansion - contraction - churned."""
        span = params.series_range("day", date_from, date_to)
        if span.date_to > params.today():
            raise params.BadParameter("to", f"{span.date_to} is after today ({params.today()} UTC)")
        return await answer(
            request, "revenue_aggregates", tenant_id,
            lambda: queries.mrr_bridge(database, tenant_id, span.date_from, span.date_to),
        )

    @app.get("/v1/kpis", tags=["revenue"])
    async def kpis(
        request: Request,
        tenant_id: str = Depends(require_tenant),
        period_type: str | None = Query(None, description="day, week, month, quarter or year (default month)"),
        day: str | None = Query(None, description="A day of the period, YYYY-MM-DD (default today, UTC)"),
    ) -> Response:
        """KPIs of the period holding `day`, against the period before: MRR, ARR, the MRR
        movements, net new MRR and revenue."""
        kind = params.period_type(period_type, "month")
        when = params.date("day", day, params.today())
        return await answer(
            request, "revenue_aggregates", tenant_id, lambda: queries.kpis(database, tenant_id, kind, when)
        )

    @app.get("/v1/cohorts", tags=["cohorts"])
    async def cohorts(
        request: Request,
        tenant_id: str = Depends(require_tenant),
        date_from: str | None = Query(None, alias="from", description="First cohort month, YYYY-MM (default 23 months before `to`)"),
        date_to: str | None = Query(None, alias="to", description="Last cohort month, YYYY-MM (default this month)"),
        format: str | None = Query(None, description="json (default) or csv"),
    ) -> Response:
        """The retention triangle of the cohorts [from, to]: size, retained users, retention
        rate, revenue and ltv for every month of each cohort."""
        first, last = params.cohort_range(date_from, date_to)
        fmt = params.output_format(format)
        meta = {"from": first, "to": last}
        return await answer(
            request, "user_cohorts", tenant_id,
            lambda: queries.table(database, tenant_id, "cohorts", fmt, meta, date_from=first, date_to=last),
            fmt, f"cohorts_{first:%Y-%m}_{last:%Y-%m}",
        )

    @app.get("/v1/tournaments", tags=["tournaments"])
    async def tournaments(
        request: Request,
        tenant_id: str = Depends(require_tenant),
        period_type: str | None = Query(None, description="day, week, month, quarter or year (default day)"),
        date_from: str | None = Query(None, alias="from", description="First day, YYYY-MM-DD"),
        date_to: str | None = Query(None, alias="to", description="Last day, YYYY-MM-DD (default today, UTC)"),
        format: str | None = Query(None, description="json (default) or csv"),
    ) -> Response:
        """Every column of tournament_aggregates for the periods overlapping [from, to]."""
        span = params.series_range(period_type, date_from, date_to)
        fmt = params.output_format(format)
        meta = {"period_type": span.period_type, "from": span.date_from, "to": span.date_to}
        return await answer(
            request, "tournament_aggregates", tenant_id,
            lambda: queries.table(database, tenant_id, "tournament_series", fmt, meta, period_type=span.period_type,
                                  date_from=span.date_from, date_to=span.date_to),
            fmt, f"tournaments_{span.period_type}_{span.date_from}_{span.date_to}",
        )

    @app.get("/v1/reports", tags=["reports"])
    async def reports(request: Request, tenant_id: str = Depends(require_tenant)) -> Response:
        """The tenant's scheduled reports with their most recent deliveries (not cached: the
        delivery log changes outside the aggregates' runs)."""
        return await answer(request, None, tenant_id, lambda: queries.reports(database, tenant_id))

    # Unsubscribing from a report email's link (RFC 8058): the signed token is the authorisation,
    # no bearer token; analytics_pipeline/reports/unsubscribe.py says what each step does.
    app.include_router(unsubscribe_router(database))

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    async def readyz(request: Request) -> JSONResponse:
        """ready: the database answers at the schema's head and Redis answers; degraded: Redis
        does not (answers come from PostgreSQL); not ready (503): the database is not usable."""
        try:
            await run_in_threadpool(db.check_migrated, database.engine)
            database_state = "ok"
        except (db.DatabaseNotReady, ConfigError) as exc:
            database_state = str(exc)
        except Exception as exc:  # any failure to reach it means not ready, never a 500
            database_state = f"{type(exc).__name__}: {exc}"
        redis_problem = await request.app.state.cache.ping()
        status = "not ready" if database_state != "ok" else ("degraded" if redis_problem else "ready")
        body = {"status": status, "database": database_state, "redis": redis_problem or "ok"}
        return JSONResponse(body, status_code=503 if status == "not ready" else 200)

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> Response:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url="/static/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger-ui/swagger-ui.css",
            swagger_favicon_url="/static/swagger-ui/favicon-32x32.png",
        )

    @app.get("/", include_in_schema=False)
    async def dashboard() -> FileResponse:
        return FileResponse(STATIC_DIR / "dashboard.html", headers={"Cache-Control": "no-cache"})

    @app.get("/static/vendor/plotly.min.js", include_in_schema=False)
    async def plotly_js() -> FileResponse:
        return FileResponse(PLOTLY_JS, media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})

    app.mount("/static/swagger-ui", StaticFiles(directory=SWAGGER_DIR), name="swagger-ui")
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
