"""Every import points down the layers of docs/architecture.md: a module imports only from its own
package or from a layer below its own, and no domain imports another. So the pipeline does not know
its readers: nothing below the Dashboard API or the reports imports them.

Imports are read from the source, every form: `import a.b`, `from a.b import c`, relative ones, and
those inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "analytics_pipeline"

# The layers, bottom first; a package's modules may import from lower layers and their own package.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("analytics_pipeline.core",),
    ("analytics_pipeline.aggregation",),
    ("analytics_pipeline.revenue", "analytics_pipeline.tournaments", "analytics_pipeline.cohorts"),
    ("analytics_pipeline.domains",),
    ("analytics_pipeline.reports", "analytics_pipeline.retention", "analytics_pipeline.alerts"),
    ("analytics_pipeline.api",),
    ("analytics_pipeline.definitions",),
    ("analytics_pipeline.dev",),
    ("analytics_pipeline.cli",),
)
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


def place(module: str) -> tuple[int, str] | None:
    """(layer, package) of a module of the project, None for the package's own __init__."""
    for level, packages in enumerate(LAYERS):
        for package in packages:
            if _is_in(module, package):
                return level, package
    return None


def _project_modules() -> list[tuple[str, Path]]:
    return [(_module(path), path) for path in sorted(PACKAGE.rglob("*.py"))]


def test_every_module_has_a_layer():
    unplaced = [module for module, _ in _project_modules() if module != "analytics_pipeline" and place(module) is None]
    assert not unplaced, f"modules outside every layer: {unplaced}"


def test_every_import_points_down():
    offending = []
    for module, path in _project_modules():
        here = place(module)
        if here is None:
            continue
        for name in sorted(imported(path)):
            there = place(name)
            if there is None or there[1] == here[1]:
                continue
            if there[0] >= here[0]:
                offending.append(f"{module} (layer {here[0]}) imports {name} (layer {there[0]})")
    assert not offending, "\n".join(offending)


@pytest.mark.parametrize("reader", READERS)
def test_nothing_below_a_reader_imports_it(reader):
    """The rule above, named for the case that matters most (a run importing the API)."""
    reader_level = place(reader)[0]
    offending = []
    for module, path in _project_modules():
        here = place(module)
        if here is None or here[0] >= reader_level:
            continue
        offending += [f"{module} imports {name}" for name in sorted(imported(path)) if _is_in(name, reader)]
    assert not offending, offending


def test_the_check_sees_an_upward_import(tmp_path, monkeypatch):
    folder = tmp_path / "analytics_pipeline" / "aggregation"
    folder.mkdir(parents=True)
    (folder / "runs.py").write_text("from ..domains import DOMAINS\n")
    monkeypatch.setattr(f"{__name__}.PACKAGE", tmp_path / "analytics_pipeline")
    with pytest.raises(AssertionError, match="aggregation.runs .layer 1. imports analytics_pipeline.domains"):
        test_every_import_points_down()


ARCHITECTURE = PACKAGE.parent / "docs" / "architecture.md"


def package_edges() -> set[tuple[str, str]]:
    """(importer, imported) between the packages of the layers, e.g. ("api", "reports")."""
    edges = set()
    for module, path in _project_modules():
        here = place(module)
        if here is None:
            continue
        for name in imported(path):
            there = place(name)
            if there is not None and there[1] != here[1]:
                edges.add((here[1].rpartition(".")[2], there[1].rpartition(".")[2]))
    return edges


def drawn_edges() -> set[tuple[str, str]]:
    block = ARCHITECTURE.read_text(encoding="utf-8").split("```mermaid", 1)[1].split("```", 1)[0]
    edges = set()
    for line in block.splitlines():
        if "-->" in line:
            importer, _, imported_ = (part.strip() for part in line.partition("-->"))
            edges.add((importer, imported_))
    return edges


def test_the_drawn_import_graph_is_the_code_s():
    actual = package_edges()
    mermaid = "\n".join(f"    {a} --> {b}" for a, b in sorted(actual))
    assert drawn_edges() == actual, f"docs/architecture.md's graph differs from the code; the code's edges:\n{mermaid}"
