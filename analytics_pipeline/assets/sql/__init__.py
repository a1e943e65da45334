"""SQL statements of the aggregate assets, one statement per file, beside the modules that run them.

Each file cites the docs/metrics.md section that defines what it computes.
"""

from __future__ import annotations

import functools
from importlib import resources


@functools.cache
def load(name: str) -> str:
    """The statement in `<name>.sql` under this folder, e.g. `load("tournaments/aggregate")`."""
    return resources.files(__package__).joinpath(f"{name}.sql").read_text(encoding="utf-8")
