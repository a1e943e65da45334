"""alembic, configured from `[tool.alembic]` in pyproject.toml, run against a given URL."""

from __future__ import annotations

import re

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

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


def check_revision(revision: str) -> str:
    """`revision` if alembic can resolve it without a database (an id, a unique prefix of one,
    head, base) or it is relative to the database's revision (+N, -N); else ValueError naming
    what is accepted."""
    from alembic.util import CommandError

    if re.fullmatch(r"[+-]\d+", revision):
        return revision
    script = ScriptDirectory.from_config(alembic_config())
    try:
        if revision.strip():
            script.get_revisions(revision)
            return revision
    except CommandError:
        pass
    known = ", ".join(s.revision for s in script.walk_revisions("base", "heads"))
    raise ValueError(f"{revision!r} is not a revision; accepted: head, base, +N, -N or one of {known}")
