"""SQL statements of the domains, one statement per file, in each domain package's `sql/` folder.

Each file cites the docs/metrics.md section that defines what it computes.
"""

from __future__ import annotations

import functools
from importlib import resources


@functools.cache
def load_sql(package: str, name: str) -> str:
    """The statement in `<name>.sql` under the `sql/` folder of `package`, e.g.
    `load_sql("analytics_pipeline.tournaments", "aggregate")`."""
    return resources.files(package).joinpath("sql", f"{name}.sql").read_text(encoding="utf-8")


def sql_loader(package: str):
    """`load(name)` for one domain package's statements."""
    return functools.partial(load_sql, package)
