"""Dagster resources: the analytics database (and its embedded default)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import dagster as dg
from pydantic import Field
from sqlalchemy.engine import Connection, Engine

from .db import check_migrated, engine_for, resolve_url, tenant_scope


class AnalyticsDatabase(dg.ConfigurableResource):
    """The PostgreSQL database holding analytics_events and the aggregates.

    `url` defaults to the `DATABASE_URL` environment variable and, where that is unset, to the
    embedded server under `.analytics/pgdata`. Connections are pooled per process.
    """

    url: str | None = Field(
        default=None,
        description="postgresql:// URL; defaults to DATABASE_URL, else the embedded server.",
    )

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # Fail a run at start with one clear line rather than midway with a SQL error.
        check_migrated(self.engine)

    @property
    def resolved_url(self) -> str:
        return resolve_url(self.url)

    @property
    def engine(self) -> Engine:
        return engine_for(self.resolved_url)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One transaction on the pipeline's own role: committed on success, rolled back on error."""
        with self.engine.begin() as conn:
            yield conn

    @contextlib.contextmanager
    def tenant_transaction(self, tenant_id: str) -> Iterator[Connection]:
        """One transaction as `analytics_app` for `tenant_id`: row-level security admits only
        that tenant's rows, for reading and writing."""
        with self.engine.begin() as conn, tenant_scope(conn, tenant_id):
            yield conn
