"""The pipeline does not know its readers: no module below the readers imports them.

The readers are the Dashboard API (`analytics_pipeline.api`) and the report delivery
(`analytics_pipeline.reports`); only the top of the project (the command line, the code location's
assembly, the dev stack) and the readers themselves may import them. Imports are read from the
source, every form: `import a.b`, `from a.b import c`, relative ones, and those inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "analytics_pipeline"

# Modules at the top, which assemble everything and so may import anything.
TOP = {"analytics_pipeline.cli", "analytics_pipeline.definitions", "analytics_pipeline.demo"}
READERS = ("analytics_pipeline.api", "analytics_pipeline.reports")


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> set[str]:
    """Every module `path` imports, absolute."""
    module = _module(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            found.add(prefix)
            found.update(f"{prefix}.{alias.name}" for alias in node.names)
    return found


def _is_in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_imports_are_read_in_every_form(tmp_path, monkeypatch):
    folder = tmp_path / "analytics_pipeline" / "domain"
    folder.mkdir(parents=True)
    source = folder / "assets.py"
    source.write_text(
        "import analytics_pipeline.api.app\n"
        "from ..reports import render\n"
        "def f():\n    from ..api.cache import ResponseCache\n"
    )
    monkeypatch.setattr(f"{__name__}.PACKAGE", tmp_path / "analytics_pipeline")
    found = imported(source)
    assert {"analytics_pipeline.api.app", "analytics_pipeline.reports.render", "analytics_pipeline.api.cache"} <= found


@pytest.mark.parametrize("reader", READERS)
def test_nothing_below_a_reader_imports_it(reader):
    offending = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module(path)
        if module in TOP or any(_is_in(module, r) for r in READERS):
            continue
        offending += [f"{module} imports {name}" for name in sorted(imported(path)) if _is_in(name, reader)]
    assert not offending, offending
