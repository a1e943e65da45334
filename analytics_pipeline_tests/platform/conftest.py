"""The Prisma toolchain of platform/prisma: Node, the pinned npm packages (`make` installs them
with `npm ci`), the schema's DMMF and the generated, compiled client.

Without Node or the packages every test here fails, naming what is missing: the Prisma check is
part of the suite, never skipped.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from analytics_pipeline.core.settings import PROJECT_DIR

PRISMA_DIR = PROJECT_DIR / "platform" / "prisma"
SCHEMA = PRISMA_DIR / "schema.prisma"
# Where the client is generated and compiled, one folder per content of its inputs; inside
# platform/prisma so that Node finds its node_modules.
BUILDS = PRISMA_DIR / ".check"
# What the client's build is made of: a change to any of them builds it again.
BUILD_INPUTS = (
    "schema.prisma",
    "prisma.config.ts",
    "tsconfig.json",
    "package-lock.json",
    "check/usage.ts",
    "check/roundtrip.ts",
)
INSTALLED = PRISMA_DIR / "node_modules" / ".installed"

# Prisma's CLI looks for its native schema engine, which it would download from a host CI cannot
# reach; an existing file stands in for it (check/no-schema-engine says why): validate and
# generate run on the WebAssembly engine in the npm package. Telemetry and update checks off: the
# check runs offline.
PRISMA_ENV = {
    "PRISMA_SCHEMA_ENGINE_BINARY": str(PRISMA_DIR / "check" / "no-schema-engine"),
    "CHECKPOINT_DISABLE": "1",
    "PRISMA_HIDE_UPDATE_MESSAGE": "1",
}


def node_binary() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail(
            "node is not on PATH: the Prisma check of platform/prisma needs Node >= 20.19 and npm "
            "(then `make platform/prisma/node_modules/.installed`)",
            pytrace=False,
        )
    if not INSTALLED.exists():
        pytest.fail(
            "platform/prisma's npm packages are not installed: run "
            "`make platform/prisma/node_modules/.installed` (npm ci of platform/prisma/package-lock.json)",
            pytrace=False,
        )
    return node


def run_node(
    args: Sequence[str | Path], cwd: Path = PRISMA_DIR, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run `node args...`; the completed process, with its output as text."""
    return subprocess.run(
        [node_binary(), *map(str, args)],
        cwd=cwd,
        env={**os.environ, **PRISMA_ENV, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def schema_dmmf(schema: Path) -> dict:
    """The DMMF of a schema file (check/dmmf.mjs); fails the test with Prisma's message when the
    schema is invalid."""
    done = run_node([PRISMA_DIR / "check" / "dmmf.mjs", schema])
    if done.returncode != 0:
        pytest.fail(done.stderr, pytrace=False)
    return json.loads(done.stdout)


@pytest.fixture(scope="session")
def dmmf() -> dict:
    return schema_dmmf(SCHEMA)


def _build_key() -> str:
    digest = hashlib.sha256(run_node(["--version"]).stdout.encode())
    for name in BUILD_INPUTS:
        digest.update(name.encode() + b"\0" + (PRISMA_DIR / name).read_bytes())
    return digest.hexdigest()[:16]


def _build(folder: Path) -> str:
    """Generate the client from a copy of the schema in `folder` and compile it with the usage
    files under tsc --strict; what went wrong, or "" when nothing did."""
    for name in BUILD_INPUTS:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(PRISMA_DIR / name, folder / name)
    prisma = PRISMA_DIR / "node_modules" / "prisma" / "build" / "index.js"
    generated = run_node([prisma, "generate"], cwd=folder)  # with folder/prisma.config.ts
    if generated.returncode != 0:
        return f"prisma generate failed:\n{generated.stdout}{generated.stderr}"
    tsc = PRISMA_DIR / "node_modules" / "typescript" / "bin" / "tsc"
    compiled = run_node([tsc, "-p", folder / "tsconfig.json"], cwd=folder)
    if compiled.returncode != 0:
        return f"tsc --strict failed:\n{compiled.stdout}{compiled.stderr}"
    return ""


@pytest.fixture(scope="session")
def compiled_client() -> Path:
    """A folder with the generated client and check/*.ts compiled to build/ (ES modules). Built
    once for all pytest workers (under a lock) and kept while its inputs do not change."""
    node_binary()
    BUILDS.mkdir(exist_ok=True)
    key = _build_key()
    folder = BUILDS / key
    with open(BUILDS / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / ".built").exists():
            for old in BUILDS.iterdir():
                if old.is_dir():
                    shutil.rmtree(old)
            folder.mkdir()
            failure = _build(folder)
            if failure:
                shutil.rmtree(folder)
                pytest.fail(failure, pytrace=False)
            (folder / ".built").touch()
    return folder
