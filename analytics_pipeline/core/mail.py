"""Sending mail: an SMTP client (one connection for several messages, the security modes, each
failure classified as temporary or permanent) and the outbox folder that stands in for a server.
The `mail` resource (resources.MailResource) configures them."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import smtplib
import ssl
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path

SMTP_SECURITY_MODES = ("none", "starttls", "ssl")
# The port of each security mode, where none is configured.
SMTP_DEFAULT_PORTS = {"none": 25, "starttls": 587, "ssl": 465}


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


# `send(message, outbox_name)`: the name is the file's in the outbox, unused by a server.
Send = Callable[[EmailMessage, str], MailReceipt]


@dataclasses.dataclass(frozen=True)
class SmtpServer:
    """An SMTP server to send through: `security` is one of SMTP_SECURITY_MODES; no login without
    `username`; `timeout_seconds` per command, a slower server being a temporary failure."""

    host: str
    port: int
    security: str
    username: str | None = None
    password: str | None = None
    timeout_seconds: float = 30.0

    def describe(self) -> str:
        return f"smtp://{self.host}:{self.port} ({self.security})"

    @contextlib.contextmanager
    def session(self) -> Iterator[Send]:
        """A `send` function for several messages: one connection, opened at the first message,
        and opened again after a failure. Raises TemporaryMailError or PermanentMailError; a
        receipt lists recipients the server refused while it accepted the others."""
        host, port = self.host, self.port
        connection: list[smtplib.SMTP] = []

        def send(message: EmailMessage, outbox_name: str) -> MailReceipt:
            try:
                if not connection:
                    connection.append(self.connect())
                refused = connection[0].send_message(message)
            except smtplib.SMTPRecipientsRefused as exc:
                replies = {rcpt: _reply(code, text) for rcpt, (code, text) in exc.recipients.items()}
                temporary = not all(code >= 500 for code, _ in exc.recipients.values())
                error = TemporaryMailError if temporary else PermanentMailError
                raise error(f"every recipient was refused: {replies}", replies) from None
            except smtplib.SMTPResponseException as exc:
                _drop(connection)
                error = TemporaryMailError if 400 <= exc.smtp_code < 500 else PermanentMailError
                raise error(f"{host}:{port} replied {_reply(exc.smtp_code, exc.smtp_error)}") from None
            except (ssl.SSLCertVerificationError, smtplib.SMTPNotSupportedError) as exc:
                _drop(connection)
                raise PermanentMailError(f"{host}:{port}: {exc}") from None
            except (OSError, smtplib.SMTPException) as exc:
                _drop(connection)
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

    def connect(self) -> smtplib.SMTP:
        """A connection in the security mode, logged in when there is a username."""
        if self.security == "ssl":
            smtp = smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout_seconds, context=ssl.create_default_context()
            )
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout_seconds)
        try:
            if self.security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if self.username:
                smtp.login(self.username, self.password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp


@dataclasses.dataclass(frozen=True)
class Outbox:
    """A folder that takes each message as an .eml file, where no server is configured."""

    folder: Path

    @contextlib.contextmanager
    def session(self) -> Iterator[Send]:
        yield lambda message, name: MailReceipt(refused={}, outbox_path=self.write(message, name))

    def write(self, message: EmailMessage, name: str) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / name
        # Written whole, then renamed: a reader never sees half a message, and a retry replaces it.
        partial = path.with_suffix(".partial")
        partial.write_bytes(message.as_bytes())
        os.replace(partial, path)
        return path


def _drop(connection: list) -> None:
    # After a failure the session's state is unknown: the next message opens a new one.
    if connection:
        connection.pop().close()


def _reply(code: int, text: bytes | str) -> str:
    text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return f"{code} {' '.join(text.split())}"
