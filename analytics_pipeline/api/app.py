"""The Dashboard API (FastAPI) assembled: its settings, cache and freshness reader, its error
answers, the read-only /v1 endpoints per tenant (endpoints.py), health, OpenAPI docs served from
local files, and the dashboard page. `create_app()` builds it; `analytics-pipeline api` serves it
with uvicorn. Endpoints and behaviour: docs/api.md."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from importlib.resources import files
from pathlib import Path

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from ..core import db
from ..core.cache_versions import cache_prefix
from ..core.redis_server import resolve_redis_url
from ..core.resources import AnalyticsDatabase
from ..core.settings import ConfigError
from ..reports.unsubscribe_routes import unsubscribe_router
from . import bodies, params
from .auth import TokenVerifier, Unauthorized
from .cache import ResponseCache
from .endpoints import v1_router
from .freshness import FreshnessReader
from .settings import cache_max_entry_bytes, cache_ttl_seconds, jwt_settings

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
PLOTLY_JS = Path(str(files("plotly") / "package_data" / "plotly.min.js"))
# Swagger UI 5 (it reads OpenAPI 3.1, which FastAPI writes), as the fastapi-offline package ships it.
SWAGGER_DIR = Path(str(files("fastapi_offline") / "static"))


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
        return _error(400, str(exc), parameter=exc.parameter, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        first = exc.errors()[0]
        name = str(first["loc"][-1]) if first.get("loc") else "request"
        return _error(400, f"{name}: {first.get('msg', 'invalid')}", parameter=name)

    @app.exception_handler(sa.exc.DataError)
    async def database_refused_a_value(request: Request, exc: sa.exc.DataError):
        # The parameters are range-checked first (params.py): a value PostgreSQL still refuses
        # (out of range, not representable) is the request's, not the server's.
        logger.warning("answering 400 to %s: %s", request.url.path, str(exc.orig).splitlines()[0])
        return _error(400, "request: a value is outside what the database can hold", parameter="request")

    @app.exception_handler(db.DatabaseNotReady)
    @app.exception_handler(sa.exc.OperationalError)
    @app.exception_handler(sa.exc.InterfaceError)
    @app.exception_handler(sa.exc.InternalError)
    async def database_not_ready(request: Request, exc: Exception):
        logger.warning("answering 503: %s", str(exc).splitlines()[0])
        return _error(503, "the analytics database is not available")

    # The tenant's data, each request with a bearer token (endpoints.py).
    app.include_router(v1_router(database))

    # Unsubscribing from a report email's link (RFC 8058): the signed token is the authorisation,
    # no bearer token; analytics_pipeline/reports/unsubscribe.py says what each step does.
    app.include_router(unsubscribe_router(database))

    @app.get("/healthz", tags=["health"], responses=bodies.answers(bodies.HEALTH))
    async def healthz() -> dict:
        """The process is up."""
        return {"status": "ok"}

    readiness = app.state.readiness = Readiness(database)

    @app.get("/readyz", tags=["health"], responses={
        **bodies.answers(bodies.READINESS),
        503: {"description": "not ready: the database is not usable",
              "content": {"application/json": {"schema": bodies.READINESS}}},
    })
    async def readyz(request: Request) -> JSONResponse:
        """ready: the database answers at the schema's head and Redis answers; degraded: Redis
        does not (answers come from PostgreSQL); not ready (503): the database is not usable.
        Within a second whatever hangs; the body names the failing dependency only, the log
        says what is wrong with it."""
        status, failing = await readiness.check(request.app.state.cache)
        body = {"status": status, **({"failing": failing} if failing else {})}
        return JSONResponse(body, status_code=503 if status == "not ready" else 200)

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> FileResponse:
        return FileResponse(STATIC_DIR / "docs.html", headers={"Cache-Control": "no-cache"})

    @app.get("/", include_in_schema=False)
    async def dashboard() -> FileResponse:
        return FileResponse(STATIC_DIR / "dashboard.html", headers={"Cache-Control": "no-cache"})

    @app.get("/static/vendor/plotly.min.js", include_in_schema=False)
    async def plotly_js() -> FileResponse:
        return FileResponse(PLOTLY_JS, media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})

    app.mount("/static/swagger-ui", StaticFiles(directory=SWAGGER_DIR), name="swagger-ui")
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.openapi = lambda: openapi_document(app)
    app.add_middleware(SecurityHeaders)
    return app


# Every response, the page's and /docs' included: scripts and everything else from the API itself
# (no inline script; styles may be set inline, as plotly.js and Swagger UI do), never framed, no
# sniffed content types, no Referer leaving the page (docs/api.md#browser-security).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every HTTP response (pure ASGI: no per-request task or body copy,
    unlike BaseHTTPMiddleware)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *SECURITY_HEADERS]
            await send(message)

        return await self.app(scope, receive, send_with_headers)


ERROR_RESPONSES = {
    "400": "A parameter is malformed, out of range or unknown; `parameter` names it.",
    "401": "No usable bearer token.",
    "503": "The analytics database is not available.",
}


def openapi_document(app: FastAPI) -> dict:
    """FastAPI's document with the errors the API answers: 400 (with `parameter`), 401 and 503 on
    every /v1 operation, instead of the 422 FastAPI lists but this API never sends; an optional
    query parameter a string (FastAPI says string or null)."""
    if app.openapi_schema is None:
        document = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
        document.setdefault("components", {}).setdefault("schemas", {})["Error"] = {
            "type": "object",
            "required": ["detail"],
            "properties": {"detail": {"type": "string"}, "parameter": {"type": "string"},
                           "unknown": {"type": "array", "items": {"type": "string"}}},
        }
        error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
        for operations in document["paths"].values():
            for operation in operations.values():
                for parameter in operation.get("parameters", ()):
                    # A query parameter is a string or absent, never JSON's null.
                    schema = parameter["schema"]
                    kinds = schema.pop("anyOf", None)
                    if kinds:
                        schema.update(next(kind for kind in kinds if kind != {"type": "null"}))
                responses = operation.setdefault("responses", {})
                responses.pop("422", None)
                if "security" in operation:  # the /v1 reads, each with a bearer token
                    for status, description in ERROR_RESPONSES.items():
                        responses.setdefault(status, {"description": description, "content": error})
                elif operation.get("parameters"):  # the unsubscribe link: its token is refused with 400
                    responses.setdefault("400", {"description": "The parameter is not valid."})
        for name in ("HTTPValidationError", "ValidationError"):
            document["components"]["schemas"].pop(name, None)
        app.openapi_schema = document
    return app.openapi_schema


class Readiness:
    """/readyz's checks, run side by side and each bounded, so that the answer comes within a
    second whatever hangs: the database (migrated to the head) within DATABASE_PROBE_SECONDS,
    Redis through the cache's own circuit (ResponseCache.health). What is wrong is logged when it
    changes, never sent: the probe is unauthenticated.

    The database probe runs in a worker thread (SQLAlchemy and psycopg block), on connections of
    its own: a new one per probe (no pooled connection that a hung server could keep waiting in a
    query), each giving up connecting after PROBE_CONNECT_TIMEOUT_SECONDS and its statements after
    PROBE_STATEMENT_TIMEOUT_MS on the server. One probe at a time per process: a /readyz that comes
    while one runs waits for that one, so a hung database keeps at most one thread waiting, for
    about PROBE_CONNECT_TIMEOUT_SECONDS, however often /readyz is asked."""

    DATABASE_PROBE_SECONDS = 0.8
    # libpq's (and psycopg's) least connect_timeout: a smaller one is taken as 2.
    PROBE_CONNECT_TIMEOUT_SECONDS = 2
    PROBE_STATEMENT_TIMEOUT_MS = 800

    def __init__(self, database: AnalyticsDatabase):
        self.database = database
        self._logged: dict[str, str | None] = {"database": None, "redis": None}
        self._probe: asyncio.Future | None = None

    @functools.cached_property
    def engine(self) -> sa.Engine:
        """The probe's engine: no pool, bounded connects and statements (see the class)."""
        return sa.create_engine(
            db.sqlalchemy_url(self.database.resolved_url),
            poolclass=sa.pool.NullPool,
            connect_args={
                "application_name": "analytics-pipeline readyz",
                "connect_timeout": self.PROBE_CONNECT_TIMEOUT_SECONDS,
                # A host that vanishes once connected: unacknowledged data or silent keepalives
                # end the connection within seconds, instead of TCP's retries of many minutes.
                "tcp_user_timeout": self.PROBE_CONNECT_TIMEOUT_SECONDS * 1000,
                "keepalives": 1,
                "keepalives_idle": 1,
                "keepalives_interval": 1,
                "keepalives_count": self.PROBE_CONNECT_TIMEOUT_SECONDS,
                "options": f"-c timezone=UTC -c statement_timeout={self.PROBE_STATEMENT_TIMEOUT_MS} "
                           f"-c lock_timeout={self.PROBE_STATEMENT_TIMEOUT_MS}",
            },
        )

    @property
    def probing(self) -> bool:
        """A probe's thread is still at work (after its answer's time ran out, say)."""
        return self._probe is not None and not self._probe.done()

    async def _database_problem(self) -> str | None:
        if not self.probing:
            self._probe = asyncio.ensure_future(run_in_threadpool(db.check_migrated, self.engine))
            # Its outcome is read below, or by no one when the answer's time ran out first.
            self._probe.add_done_callback(lambda probe: probe.cancelled() or probe.exception())
        try:
            await asyncio.wait_for(asyncio.shield(self._probe), self.DATABASE_PROBE_SECONDS)
        except TimeoutError:
            return f"no answer within {self.DATABASE_PROBE_SECONDS} s"
        except (db.DatabaseNotReady, ConfigError) as exc:
            return str(exc)
        except Exception as exc:  # any failure to reach it means not ready, never a 500
            return f"{type(exc).__name__}: {exc}"
        return None

    async def check(self, cache: ResponseCache) -> tuple[str, list[str]]:
        problems = dict(zip(("database", "redis"), await asyncio.gather(self._database_problem(), cache.health())))
        for dependency, problem in problems.items():
            if problem != self._logged[dependency]:
                if problem is None:
                    logger.warning("readiness: %s answers again", dependency)
                else:
                    logger.warning("readiness: %s: %s", dependency, problem)
                self._logged[dependency] = problem
        failing = [dependency for dependency, problem in problems.items() if problem is not None]
        status = "not ready" if problems["database"] else ("degraded" if failing else "ready")
        return status, failing
