"""Dagster resources: the analytics database (and its embedded default), outgoing mail."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import smtplib
import ssl
from collections.abc import Callable, Iterator
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path

import dagster as dg
from pydantic import Field
from sqlalchemy.engine import Connection, Engine

from .cache_versions import CacheInvalidation
from .db import check_migrated, engine_for, resolve_url, tenant_scope
from .settings import ConfigError, analytics_home


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


SMTP_SECURITY_MODES = ("none", "starttls", "ssl")
DEFAULT_MAIL_FROM = "Analytics reports <reports@localhost>"


class MailError(RuntimeError):
    def __init__(self, message: str, refused: dict[str, str] | None = None):
        super().__init__(message)
        self.refused = refused or {}  # recipient -> reply, when the recipients were what was refused


class TemporaryMailError(MailError):
    """The server could not take the message now (unreachable, timeout, 4xx): try again later."""


class PermanentMailError(MailError):
    """The server refused the message for good (5xx, every recipient refused, bad TLS or login)."""


@dataclasses.dataclass(frozen=True)
class MailReceipt:
    refused: dict[str, str]  # recipient -> the server's reply, for recipients refused while others got it
    outbox_path: Path | None = None  # set when written to the outbox instead of sent


def pipeline_resources(url: str | None = None) -> dict[str, dg.ConfigurableResource]:
    """The resources the pipeline's assets use: the database at `url` (default as
    AnalyticsDatabase's) and the cache invalidation of the aggregates' runs."""
    return {"database": AnalyticsDatabase(url=url), "cache": CacheInvalidation()}


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
        raw = self._setting(self.port, "SMTP_PORT")
        if raw is None:
            return {"ssl": 465, "starttls": 587}.get(self.resolved_security, 25)
        try:
            port = int(raw)
        except (TypeError, ValueError):
            port = 0
        if not 0 < port < 65536:
            raise ConfigError(f"SMTP_PORT must be a port number (1-65535), got {raw!r}")
        return port

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
    def session(self) -> Iterator[Callable[[EmailMessage, str], MailReceipt]]:
        """A `send` function for several messages: one SMTP connection, opened at the first
        message, and opened again after a failure (with no host, each goes to the outbox)."""
        host = self.resolved_host
        if not host:
            yield lambda message, name: MailReceipt(refused={}, outbox_path=self._write_outbox(message, name))
            return
        security, port = self.resolved_security, self.resolved_port
        connection: list[smtplib.SMTP] = []

        def send(message: EmailMessage, outbox_name: str) -> MailReceipt:
            try:
                if not connection:
                    connection.append(self._connect(host, port, security))
                refused = connection[0].send_message(message)
            except smtplib.SMTPRecipientsRefused as exc:
                replies = {rcpt: _reply(code, text) for rcpt, (code, text) in exc.recipients.items()}
                temporary = not all(code >= 500 for code, _ in exc.recipients.values())
                error = TemporaryMailError if temporary else PermanentMailError
                raise error(f"every recipient was refused: {replies}", replies) from None
            except smtplib.SMTPResponseException as exc:
                self._drop(connection)
                error = TemporaryMailError if 400 <= exc.smtp_code < 500 else PermanentMailError
                raise error(f"{host}:{port} replied {_reply(exc.smtp_code, exc.smtp_error)}") from None
            except (ssl.SSLCertVerificationError, smtplib.SMTPNotSupportedError) as exc:
                self._drop(connection)
                raise PermanentMailError(f"{host}:{port}: {exc}") from None
            except (OSError, smtplib.SMTPException) as exc:
                self._drop(connection)
                # Connection refused or reset, DNS, timeouts, a server that hung up: worth another try.
                raise TemporaryMailError(f"{host}:{port}: {type(exc).__name__}: {exc}") from None
            return MailReceipt(refused={rcpt: _reply(code, text) for rcpt, (code, text) in refused.items()})

        try:
            yield send
        finally:
            if connection:
                try:
                    connection[0].quit()
                except (OSError, smtplib.SMTPException):
                    connection[0].close()

    def _connect(self, host: str, port: int, security: str) -> smtplib.SMTP:
        username = self._setting(self.username, "SMTP_USERNAME")
        password = self._setting(self.password, "SMTP_PASSWORD")
        if security == "ssl":
            smtp = smtplib.SMTP_SSL(host, port, timeout=self.timeout_seconds, context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(host, port, timeout=self.timeout_seconds)
        try:
            if security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if username:
                smtp.login(username, password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    @staticmethod
    def _drop(connection: list) -> None:
        # After a failure the session's state is unknown: the next message opens a new one.
        if connection:
            connection.pop().close()

    def _write_outbox(self, message: EmailMessage, name: str) -> Path:
        self.outbox.mkdir(parents=True, exist_ok=True)
        path = self.outbox / name
        # Written whole, then renamed: a reader never sees half a message, and a retry replaces it.
        partial = path.with_suffix(".partial")
        partial.write_bytes(message.as_bytes())
        os.replace(partial, path)
        return path


def _reply(code: int, text: bytes | str) -> str:
    text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return f"{code} {' '.join(text.split())}"
