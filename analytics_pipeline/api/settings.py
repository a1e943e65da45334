"""Environment settings of the Dashboard API: its workers, its cache and its tokens, read when
needed (as analytics_pipeline/core/settings.py does), each refused with one line naming the
variable; the whole numbers by core.settings.env_int, the project's one rule for them."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from ..core.settings import ConfigError, analytics_home, env_int, local_secret

DEFAULT_CACHE_TTL_SECONDS = 300
DEFAULT_CACHE_MAX_ENTRY_BYTES = 1_048_576
# Each worker process pools up to 10 database connections (db.engine_for): at most 4 by default
# keeps the API within 40 of PostgreSQL's default 100 connections beside the pipeline's runs.
MAX_DEFAULT_WORKERS = 4
JWT_ALGORITHMS = ("HS256", "RS256")


def api_workers() -> int:
    """uvicorn worker processes of `analytics-pipeline api` (`API_WORKERS`), by default one per
    core this process may run on, at most MAX_DEFAULT_WORKERS."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return env_int("API_WORKERS", max(1, min(cores, MAX_DEFAULT_WORKERS)))


def cache_ttl_seconds() -> int:
    """How long a cached response lives (`API_CACHE_TTL_SECONDS`, default 300): the bound on
    staleness when a materialization could not advance the versions."""
    return env_int("API_CACHE_TTL_SECONDS", DEFAULT_CACHE_TTL_SECONDS)


def cache_max_entry_bytes() -> int:
    """Responses larger than this are served but not cached (`API_CACHE_MAX_ENTRY_BYTES`)."""
    return env_int("API_CACHE_MAX_ENTRY_BYTES", DEFAULT_CACHE_MAX_ENTRY_BYTES)


@dataclasses.dataclass(frozen=True)
class JwtSettings:
    algorithm: str
    verify_key: str  # the HS256 secret or the RS256 public key (PEM)
    signing_key: str | None  # what `api token` signs with; None when only a public key is known
    audience: str | None


def local_secret_path() -> Path:
    return analytics_home() / "api" / "jwt_secret"


def jwt_settings() -> JwtSettings:
    """HS256 with `API_JWT_SECRET`, or RS256 with `API_JWT_PUBLIC_KEY` (PEM text or a file), and
    `aud` checked when `API_JWT_AUDIENCE` is set. With neither key set, a secret generated once
    under `<ANALYTICS_HOME>/api/` signs and verifies local tokens (`make dev`)."""
    secret = os.environ.get("API_JWT_SECRET") or None
    public_key = os.environ.get("API_JWT_PUBLIC_KEY") or None
    audience = os.environ.get("API_JWT_AUDIENCE") or None
    if secret and public_key:
        raise ConfigError("set either API_JWT_SECRET (HS256) or API_JWT_PUBLIC_KEY (RS256), not both")
    if public_key:
        if not public_key.lstrip().startswith("-----BEGIN"):
            path = Path(public_key)
            if not path.is_file():
                raise ConfigError(f"API_JWT_PUBLIC_KEY must be a PEM public key or the path of one, got {public_key!r}")
            public_key = path.read_text()
        return JwtSettings("RS256", public_key, None, audience)
    if secret is None:
        secret = local_secret(local_secret_path())
    elif len(secret) < 32:
        raise ConfigError("API_JWT_SECRET must be at least 32 characters (HS256 needs a 256-bit key)")
    return JwtSettings("HS256", secret, secret, audience)
