"""Dagster resources: the analytics database (and its embedded default), outgoing mail (the
client is in mail.py)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path

import dagster as dg
from pydantic import Field
from sqlalchemy.engine import Connection, Engine

from .cache_versions import CacheInvalidation
from .db import check_migrated, engine_for, resolve_url, tenant_scope
from .mail import (
    SMTP_DEFAULT_PORTS,
    SMTP_SECURITY_MODES,
    MailError,
    MailReceipt,
    Outbox,
    PermanentMailError,
    Send,
    SmtpServer,
    TemporaryMailError,
)
from .settings import ConfigError, analytics_home, env_int

# Importable from here as well, where the mail resource's callers catch them.
__all__ = [
    "AnalyticsDatabase",
    "MailError",
    "MailReceipt",
    "MailResource",
    "PermanentMailError",
    "TemporaryMailError",
    "pipeline_resources",
]


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


def _from_environment(variable: str) -> dg.EnvVar | None:
    """`EnvVar(variable)` where the variable is set, so that the UI's resource page shows where the
    value comes from without showing it; None where it is unset, for the resource's own default
    (the embedded server)."""
    return dg.EnvVar(variable) if os.environ.get(variable) else None


def pipeline_resources(url: str | None = None) -> dict[str, dg.ConfigurableResource]:
    """The resources the pipeline's assets use: the database at `url` (default `DATABASE_URL`, as
    AnalyticsDatabase's) and the cache invalidation of the aggregates' runs (`REDIS_URL`,
    `API_CACHE_PREFIX`)."""
    return {
        "database": AnalyticsDatabase(url=url or _from_environment("DATABASE_URL")),
        "cache": CacheInvalidation(redis_url=_from_environment("REDIS_URL"), prefix=_from_environment("API_CACHE_PREFIX")),
    }


DEFAULT_MAIL_FROM = "Analytics reports <reports@localhost>"


class MailResource(dg.ConfigurableResource):
    """Outgoing mail: an SMTP server, or with no host configured (the embedded default) the
    folder `<ANALYTICS_HOME>/outbox/`, where each message is written as an .eml file.

    Every field defaults to its environment variable: SMTP_HOST, SMTP_PORT, SMTP_USERNAME,
    SMTP_PASSWORD, SMTP_SECURITY (none, starttls, ssl) and MAIL_FROM.
    """

    host: str | None = Field(default=None, description="SMTP server; default SMTP_HOST, else the outbox.")
    port: int | None = Field(default=None, description="Default SMTP_PORT, else 465 for ssl, 587 for starttls, 25.")
    username: str | None = Field(default=None, description="Default SMTP_USERNAME; no login when unset.")
    password: str | None = Field(default=None, description="Default SMTP_PASSWORD.")
    security: str | None = Field(default=None, description="none, starttls or ssl; default SMTP_SECURITY, else starttls.")
    mail_from: str | None = Field(default=None, description="Sender address; default MAIL_FROM.")
    timeout_seconds: float = Field(default=30.0, description="Per SMTP command; a slower server is a temporary failure.")
    outbox_dir: str | None = Field(default=None, description="Where .eml files go with no host; default <ANALYTICS_HOME>/outbox.")

    def _setting(self, value, variable: str):
        return value if value not in (None, "") else (os.environ.get(variable) or None)

    @property
    def resolved_host(self) -> str | None:
        return self._setting(self.host, "SMTP_HOST")

    @property
    def resolved_security(self) -> str:
        security = (self._setting(self.security, "SMTP_SECURITY") or "starttls").lower()
        if security not in SMTP_SECURITY_MODES:
            raise ConfigError(f"SMTP_SECURITY must be one of {', '.join(SMTP_SECURITY_MODES)}, got {security!r}")
        return security

    @property
    def resolved_port(self) -> int:
        if self.port is not None:
            if not 0 < self.port < 65536:
                raise ConfigError(f"SMTP_PORT must be a port number (1-65535), got {self.port!r}")
            return self.port
        # Unset or empty (as every mail setting): the security mode's port, read only then.
        if not os.environ.get("SMTP_PORT"):
            return SMTP_DEFAULT_PORTS[self.resolved_security]
        return env_int("SMTP_PORT", SMTP_DEFAULT_PORTS["none"], minimum=1, maximum=65535)

    @property
    def sender(self) -> Address:
        raw = self._setting(self.mail_from, "MAIL_FROM")
        if raw is None:
            if self.resolved_host:
                raise ConfigError("MAIL_FROM must be set when SMTP_HOST is (e.g. 'Reports <reports@example.com>')")
            raw = DEFAULT_MAIL_FROM
        name, address = parseaddr(raw)
        if not address or "@" not in address or any(c in raw for c in "\r\n"):
            raise ConfigError(f"MAIL_FROM must be an address like 'Reports <reports@example.com>', got {raw!r}")
        user, domain = address.rsplit("@", 1)
        return Address(display_name=name, username=user, domain=domain)

    @property
    def outbox(self) -> Path:
        return Path(self.outbox_dir) if self.outbox_dir else analytics_home() / "outbox"

    def server(self) -> SmtpServer | None:
        """The SMTP server to send through; None with no host (the outbox)."""
        host = self.resolved_host
        if not host:
            return None
        security, port = self.resolved_security, self.resolved_port
        return SmtpServer(
            host,
            port,
            security,
            username=self._setting(self.username, "SMTP_USERNAME"),
            password=self._setting(self.password, "SMTP_PASSWORD"),
            timeout_seconds=self.timeout_seconds,
        )

    def describe(self) -> str:
        host = self.resolved_host
        if not host:
            return f"outbox {self.outbox}"
        return f"smtp://{host}:{self.resolved_port} ({self.resolved_security})"

    def send(self, message: EmailMessage, outbox_name: str) -> MailReceipt:
        """Send `message` to the addresses of its To header, or write it to the outbox.

        Raises TemporaryMailError or PermanentMailError; a receipt lists recipients the server
        refused while it accepted the others.
        """
        with self.session() as send:
            return send(message, outbox_name)

    @contextlib.contextmanager
    def session(self) -> Iterator[Send]:
        """A `send` function for several messages: one SMTP connection, opened at the first
        message, and opened again after a failure (with no host, each goes to the outbox)."""
        server = self.server()
        with (server or Outbox(self.outbox)).session() as send:
            yield send
