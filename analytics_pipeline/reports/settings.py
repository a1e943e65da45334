"""Settings of report delivery read from the environment when needed: where the Dashboard API is
(its CSV endpoints and the unsubscribe endpoint), the attachment size limit, the unsubscribe key.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from ..core.settings import ConfigError, analytics_home, env_int, local_secret

# With no SMTP server (the outbox of `make dev`), links point at a Dashboard API on this machine.
LOCAL_DASHBOARD_URL = "http://localhost:8000"
DEFAULT_ATTACHMENT_MAX_BYTES = 5_000_000


def dashboard_url(*, required: bool) -> str:
    """`DASHBOARD_URL`: the Dashboard API's base URL as recipients reach it (https://... in
    production), without a trailing slash. Unset: refused when `required` (mail to real
    recipients), else the local address (the outbox of `make dev`)."""
    raw = (os.environ.get("DASHBOARD_URL") or "").strip()
    if not raw:
        if required:
            raise ConfigError(
                "DASHBOARD_URL must be set to the Dashboard API's address as recipients reach it "
                "(e.g. https://analytics.example.com): report emails link to it"
            )
        return LOCAL_DASHBOARD_URL
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigError(f"DASHBOARD_URL must be an http(s) URL like https://analytics.example.com, got {raw!r}")
    return raw.rstrip("/")


def attachment_max_bytes() -> int:
    """`REPORT_ATTACHMENT_MAX_BYTES` (default 5,000,000): a larger attachment is replaced by a
    note with a link."""
    return env_int("REPORT_ATTACHMENT_MAX_BYTES", DEFAULT_ATTACHMENT_MAX_BYTES)


def local_unsubscribe_secret_path() -> Path:
    return analytics_home() / "reports" / "unsubscribe_secret"


def unsubscribe_secret() -> str:
    """`UNSUBSCRIBE_SECRET`, the HS256 key of unsubscribe tokens; the run workers that send and the
    Dashboard API that receives must share it. Unset, a secret generated once under
    `<ANALYTICS_HOME>/reports/` serves one machine (`make dev`)."""
    secret = os.environ.get("UNSUBSCRIBE_SECRET") or None
    if secret is None:
        return local_secret(local_unsubscribe_secret_path())
    if len(secret) < 32:
        raise ConfigError("UNSUBSCRIBE_SECRET must be at least 32 characters (HS256 needs a 256-bit key)")
    return secret
