"""Connections to the analytics database: URL resolution, pooled engines, readiness checks.

Everything goes through SQLAlchemy engines on the psycopg 3 driver; an engine is a connection pool
and is created once per URL and process.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, make_url

from .settings import PYPROJECT, ConfigError

ACCEPTED_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")


class DatabaseNotReady(RuntimeError):
    """The database cannot be used yet; the message says what is wrong and what to run."""


def resolve_url(url: str | None = None) -> str:
    """The URL to use: the one given, else `DATABASE_URL`, else the embedded server."""
    url = url or os.environ.get("DATABASE_URL")
    if not url:
        return _embedded_url_once()
    return url


@functools.cache
def _embedded_url_once() -> str:
    from .postgres_server import embedded_url

    return embedded_url()


def sqlalchemy_url(url: str, setting: str = "DATABASE_URL") -> str:
    """Validate a `postgresql://` URL and return it with the psycopg 3 driver named."""
    scheme = urlsplit(url).scheme
    if scheme not in ACCEPTED_SCHEMES:
        raise ConfigError(
            f"{setting} must be a postgresql:// URL (for example "
            f"postgresql://user:password@host:5432/dbname), got a {scheme or 'scheme-less'} URL"
        )
    return str(make_url(url).set(drivername="postgresql+psycopg").render_as_string(hide_password=False))


def describe(url: str) -> str:
    """The URL without its password, for messages."""
    return make_url(sqlalchemy_url(url)).render_as_string(hide_password=True)


@functools.cache
def engine_for(url: str) -> Engine:
    return sa.create_engine(
        sqlalchemy_url(url),
        pool_size=5,
        max_overflow=5,
        pool_pre_ping=True,
        # Every timestamp is naive UTC (the specification's TIMESTAMP columns): make the
        # session's now(), date casts and comparisons UTC whatever the server's default.
        connect_args={
            "application_name": "analytics-pipeline",
            "connect_timeout": 10,
            "options": "-c timezone=UTC",
        },
    )


def dispose(url: str) -> None:
    """Close the pooled connections to one URL (dropping a database needs this)."""
    engine_for(url).dispose()


def check_reachable(engine: Engine) -> None:
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise DatabaseNotReady(
            f"cannot reach the analytics database at {engine.url.render_as_string()}: {reason}. "
            "Start that server, fix DATABASE_URL, or unset it to use the embedded server."
        ) from None


@functools.cache
def head_revision() -> str:
    """The newest revision under migrations/, which the code expects the database to be at. Read
    here from the scripts alone, so that db.py needs nothing of migrate.py (which runs them)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(Config(toml_file=str(PYPROJECT))).get_current_head()


def check_migrated(engine: Engine) -> None:
    """Fail with one clear line when the schema is missing or behind the code."""
    check_reachable(engine)
    with engine.connect() as conn:
        current = None
        if sa.inspect(conn).has_table("alembic_version"):
            current = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    head = head_revision()
    if current != head:
        state = "has no analytics schema" if current is None else f"is at revision {current}"
        raise DatabaseNotReady(
            f"the analytics database {engine.url.render_as_string()} {state}, the code needs "
            f"{head}: run `analytics-pipeline db upgrade`"
        )


@contextlib.contextmanager
def tenant_scope(conn: Connection, tenant_id: str) -> Iterator[Connection]:
    """Within the connection's open transaction, act as `analytics_app` for one tenant, so that
    row-level security admits only that tenant's rows. Both settings end with the transaction."""
    if not tenant_id:
        raise ValueError("tenant_id must be a non-empty string")
    conn.execute(sa.text("SET LOCAL ROLE analytics_app"))
    conn.execute(sa.text("SELECT set_config('app.tenant_id', :t, true)"), {"t": tenant_id})
    yield conn
