"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives, and the mail settings
pointing at it."""

from __future__ import annotations

import contextlib
import email
import email.policy
import socket
from collections.abc import Iterator

import pytest
from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes: list[list[str]] = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(list(envelope.rcpt_tos))
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"


@contextlib.contextmanager
def loopback_inbox(monkeypatch: pytest.MonkeyPatch, alert_email: str = "ops@example.com") -> Iterator[Inbox]:
    """Start the server and set SMTP_* , MAIL_FROM and ALERT_EMAIL to use it."""
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    for name, value in {
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(port),
        "SMTP_SECURITY": "none",
        "MAIL_FROM": "pipeline@example.com",
        "ALERT_EMAIL": alert_email,
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("SMTP_USERNAME", "SMTP_PASSWORD", "DAGSTER_WEBSERVER_URL"):
        monkeypatch.delenv(name, raising=False)
    try:
        yield inbox
    finally:
        controller.stop()
