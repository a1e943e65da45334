"""The project uses Dagster's public API only: no module of analytics_pipeline imports a private
module of Dagster (`dagster._...`, in any form, also inside functions), which may change in any
release. Where Dagster exports no name for a stored value (a tag key, a backfill's status), the
code compares the stored string and says why."""

from __future__ import annotations

from .test_layers import PACKAGE, imported


def _private(module: str) -> bool:
    return any(part.startswith("_") and not part.startswith("__") for part in module.split(".")[1:]) and (
        module.split(".")[0].startswith("dagster")
    )


def test_private_dagster_modules_are_recognised(tmp_path, monkeypatch):
    source = tmp_path / "analytics_pipeline" / "dev" / "stop.py"
    source.parent.mkdir(parents=True)
    source.write_text(
        "import dagster as dg\n"
        "from dagster_graphql.cli import main\n"
        "def f():\n    from dagster._core.storage.tags import GRPC_INFO_TAG\n"
        "import dagster_postgres._utils\n"
    )
    monkeypatch.setattr("analytics_pipeline_tests.test_layers.PACKAGE", tmp_path / "analytics_pipeline")
    assert sorted(m for m in imported(source) if _private(m)) == [
        "dagster._core.storage.tags", "dagster._core.storage.tags.GRPC_INFO_TAG", "dagster_postgres._utils",
    ]


def test_no_module_imports_a_private_module_of_dagster():
    found = {
        f"{path.relative_to(PACKAGE.parent)}: {module}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for module in imported(path)
        if _private(module)
    }
    assert sorted(found) == []
