"""The Dashboard API (FastAPI) assembled: its settings, cache and freshness reader, its error
answers, the read-only /v1 endpoints per tenant (endpoints.py), health, OpenAPI docs served from
local files, and the dashboard page. `create_app()` builds it; `analytics-pipeline api` serves it
with uvicorn. Endpoints and behaviour: docs/api.md."""

from __future__ import annotations

import contextlib
import logging
from importlib.resources import files
from pathlib import Path

import sqlalchemy as sa
import swagger_ui_bundle
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from ..core import db
from ..core.cache_versions import cache_prefix
from ..core.redis_server import resolve_redis_url
from ..core.resources import AnalyticsDatabase
from ..core.settings import ConfigError
from ..reports.unsubscribe_routes import unsubscribe_router
from . import params
from .auth import TokenVerifier, Unauthorized
from .cache import ResponseCache
from .endpoints import v1_router
from .freshness import FreshnessReader
from .settings import cache_max_entry_bytes, cache_ttl_seconds, jwt_settings

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
PLOTLY_JS = Path(str(files("plotly") / "package_data" / "plotly.min.js"))
SWAGGER_DIR = Path(swagger_ui_bundle.swagger_ui_path)


def _error(status: int, detail: str, **extra) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"detail": detail, **extra}, status_code=status, headers=headers)


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

    # The tenant's data, each request with a bearer token (endpoints.py).
    app.include_router(v1_router(database))

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
