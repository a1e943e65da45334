"""Test databases: every test gets a database of its own on a real PostgreSQL server.

The server is the one at `TEST_DATABASE_URL` (as on CI), else the embedded server under
`.analytics/test/pgdata`. A migrated template database is built once per pytest worker; each test
clones it with `CREATE DATABASE ... TEMPLATE`, which takes milliseconds, and drops it afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy.engine import make_url

from analytics_pipeline.core import db, migrate
from analytics_pipeline.core.resources import AnalyticsDatabase
from analytics_pipeline.core.settings import PROJECT_DIR


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests marked slow (whole dev stacks, minutes each) first, in their own order, so that
    `pytest -n 2` runs them beside the many short ones instead of alone at the end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def _with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def _admin(server_url: str) -> psycopg.Connection:
    plain = make_url(server_url).set(drivername="postgresql").render_as_string(hide_password=False)
    return psycopg.connect(plain, autocommit=True)


@pytest.fixture(scope="session")
def server_url() -> str:
    """A URL of the server's maintenance database."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return url
    from analytics_pipeline.core.postgres_server import embedded_url

    return embedded_url(PROJECT_DIR / ".analytics" / "test", database="postgres")


def _create_database(server_url: str, name: str, template: str | None = None) -> str:
    with _admin(server_url) as conn:
        template_clause = f' TEMPLATE "{template}"' if template else ""
        conn.execute(f'CREATE DATABASE "{name}"{template_clause}')
    return _with_database(server_url, name)


def _drop_database(server_url: str, name: str) -> None:
    db.dispose(_with_database(server_url, name))
    with _admin(server_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def template_database(server_url: str) -> Iterator[str]:
    """Name of a database migrated to head, to be cloned by each test."""
    name = f"ap_template_{uuid.uuid4().hex[:12]}"
    url = _create_database(server_url, name)
    migrate.upgrade(url)
    db.dispose(url)  # a template must have no open connections when it is cloned
    yield name
    _drop_database(server_url, name)


@pytest.fixture
def empty_db_url(server_url: str) -> Iterator[str]:
    """A new database with no schema at all."""
    name = f"ap_test_{uuid.uuid4().hex[:16]}"
    url = _create_database(server_url, name)
    yield url
    _drop_database(server_url, name)


@pytest.fixture
def db_url(server_url: str, template_database: str) -> Iterator[str]:
    """A new database migrated to head, for this test only."""
    name = f"ap_test_{uuid.uuid4().hex[:16]}"
    url = _create_database(server_url, name, template=template_database)
    yield url
    _drop_database(server_url, name)


@pytest.fixture
def database(db_url: str) -> AnalyticsDatabase:
    return AnalyticsDatabase(url=db_url)


@pytest.fixture
def engine(db_url: str):
    return db.engine_for(db_url)
