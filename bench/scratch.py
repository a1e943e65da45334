"""A migrated scratch database for one benchmark, on the server of BENCH_DATABASE_URL, else
DATABASE_URL, else the embedded server; dropped afterwards."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import psycopg
from sqlalchemy.engine import Engine, make_url

from analytics_pipeline.core import db, migrate


def server_url() -> str:
    return os.environ.get("BENCH_DATABASE_URL") or db.resolve_url()


@contextlib.contextmanager
def scratch_database(label: str) -> Iterator[Engine]:
    base = make_url(server_url())
    name = f"bench_{label}_{uuid.uuid4().hex[:8]}"
    admin = base.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = base.set(database=name).render_as_string(hide_password=False)
    try:
        migrate.upgrade(url)
        yield db.engine_for(url)
    finally:
        db.dispose(url)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
