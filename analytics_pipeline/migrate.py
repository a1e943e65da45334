"""alembic, configured from `[tool.alembic]` in pyproject.toml, run against a given URL."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from .db import engine_for, head_revision
from .settings import PYPROJECT


__all__ = [
    "MigrationRefused", "alembic_config", "current_revision", "downgrade", "head_revision", "upgrade",
]


class MigrationRefused(RuntimeError):
    """A revision would lose or corrupt data and stops before changing anything; the message
    names what is in the way."""


def alembic_config(url: str | None = None) -> Config:
    config = Config(toml_file=str(PYPROJECT))
    if url is not None:
        config.set_main_option("sqlalchemy.url", engine_for(url).url.render_as_string(False).replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


def current_revision(url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine_for(url).connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
