"""`make bench`: run every benchmark in bench/ and write bench/RESULTS.md.

    python -m bench.run_all [--only revenue,dashboard] [--quick] [--results bench/RESULTS.md]

A benchmark is a module `bench/<name>_bench.py` with `run(ctx) -> list[dict]` (bench/README.md
describes the rows). Each one runs in a process of its own, so that its memory figures are its
own and a crash in one leaves the others' results. Modules of bench/ that do not follow the
interface are listed in the results as not run, never silently left out.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import importlib
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BENCH_DIR.parent
RESULTS = BENCH_DIR / "RESULTS.md"
SUFFIX = "_bench"
# Helpers imported by the benchmarks, not benchmarks themselves.
HELPERS = {"__init__", "run_all", "scratch", "datasets", "retention_trace"}


def setting(ctx, name: str, default=None):
    """`ctx.name` for a benchmark's `run(ctx)`: ctx may be a BenchContext, a mapping, or None
    (run standalone), and `default` stands for what it lacks."""
    if ctx is None:
        return default
    if isinstance(ctx, dict):
        return ctx.get(name, default)
    return getattr(ctx, name, default)


@dataclasses.dataclass(frozen=True)
class BenchContext:
    """What `run(ctx)` receives. Benchmarks may ignore it (`run(ctx=None)` works standalone)."""

    quick: bool  # smaller data sets for a quick look (`--quick`, BENCH_QUICK=1); figures not comparable
    out_dir: Path  # scratch files (bench/out/, ignored by git)
    server_url: str  # the PostgreSQL server benchmarks create their databases on (bench/scratch.py)

    @classmethod
    def from_env(cls) -> BenchContext:
        from bench.scratch import server_url

        out_dir = BENCH_DIR / "out"
        out_dir.mkdir(exist_ok=True)
        return cls(quick=os.environ.get("BENCH_QUICK") == "1", out_dir=out_dir, server_url=server_url())


def discover() -> tuple[list[str], dict[str, str]]:
    """Benchmark module names, and the other modules of bench/ with why they are not run."""
    benchmarks, others = [], {}
    for path in sorted(BENCH_DIR.glob("*.py")):
        name = path.stem
        if name in HELPERS:
            continue
        has_run = re.search(r"^def run\(", path.read_text(), flags=re.MULTILINE) is not None
        if name.endswith(SUFFIX) and has_run:
            benchmarks.append(name)
        elif name.endswith(SUFFIX):
            others[name] = "has no `run(ctx)`; run it by itself: `python -m bench." + name + "`"
        else:
            others[name] = f"not named `*{SUFFIX}.py`; run it by itself: `python -m bench.{name}`"
    return benchmarks, others


# --- One benchmark, in its own process --------------------------------------------------------


def run_one(name: str, rows_path: Path) -> None:
    module = importlib.import_module(f"bench.{name}")
    rows = module.run(BenchContext.from_env())
    if not isinstance(rows, list) or not all(isinstance(r, dict) and {"name", "figure"} <= r.keys() for r in rows):
        raise TypeError(f"bench.{name}.run must return a list of dicts with at least name and figure, got {rows!r}")
    rows_path.write_text(json.dumps(rows, default=str))


@dataclasses.dataclass
class Outcome:
    module: str
    seconds: float
    rows: list[dict]
    error: str | None = None


def run_in_subprocess(name: str, env: dict[str, str], log_path: Path) -> Outcome:
    """Run one benchmark; its output (Dagster logs included) goes to `log_path`."""
    with tempfile.TemporaryDirectory() as tmp, log_path.open("w") as log:
        rows_path = Path(tmp) / "rows.json"
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "bench.run_all", "--one", name, "--rows-to", str(rows_path)],
            cwd=PROJECT_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        seconds = time.perf_counter() - started
        rows = json.loads(rows_path.read_text()) if proc.returncode == 0 and rows_path.exists() else None
    if rows is None:
        lines = [line for line in log_path.read_text(errors="replace").splitlines() if line.strip()]
        sys.stderr.write("\n".join(lines[-30:]) + "\n")
        return Outcome(name, seconds, [], error=(lines[-1:] or [f"exit code {proc.returncode}"])[0])
    return Outcome(name, seconds, rows)


# --- The machine, and the verdict on a target ----------------------------------------------------


def _command_output(args: list[str]) -> str:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def machine() -> dict[str, str]:
    lscpu = dict(
        (key.strip(), value.strip())
        for key, _, value in (line.partition(":") for line in _command_output(["lscpu"]).splitlines())
    )
    memory_kb = next(
        (int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")),
        0,
    ) if Path("/proc/meminfo").exists() else 0
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",) * 3
    return {
        "CPU": lscpu.get("Model name", platform.processor() or "unknown"),
        "cores (nproc)": _command_output(["nproc"]).strip() or str(os.cpu_count()),
        "memory": f"{memory_kb / 2**20:.1f} GiB",
        "load average at start": " ".join(f"{x:.2f}" if isinstance(x, float) else x for x in load),
        "OS": f"{platform.system()} {platform.release()}",
        "Python": platform.python_version(),
    }


def postgres_version(server_url: str) -> str:
    import sqlalchemy as sa

    from analytics_pipeline.core import db

    try:
        with db.engine_for(server_url).connect() as conn:
            version = conn.execute(sa.text("SHOW server_version")).scalar_one()
            buffers = conn.execute(sa.text("SHOW shared_buffers")).scalar_one()
        return f"PostgreSQL {version} (shared_buffers {buffers}) at {db.describe(server_url)}"
    except Exception as exc:  # the results still say which server was meant
        return f"unreachable ({type(exc).__name__}) at {db.describe(server_url)}"


_TARGET = re.compile(r"^\s*(<=|<|>=|>)\s*([\d.,]+)\s*(x\b|[A-Za-z/%]+)?")
_UNIT_SCALE = {"ms": 0.001, "s": 1.0, "min": 60.0}


def ratio(row: dict) -> float | None:
    """The row's ratio to its baseline, or figure / baseline when both are numbers."""
    if isinstance(row.get("ratio"), (int, float)):
        return row["ratio"]
    figure, baseline = row.get("figure"), row.get("baseline")
    if isinstance(figure, (int, float)) and isinstance(baseline, (int, float)) and baseline:
        return round(figure / baseline, 2)
    return None


def verdict(row: dict) -> str:
    """met / not met when the target is a bound this can read (`< 100 ms`, `<= 3x ...`), else
    the row's own `met`, else blank."""
    if isinstance(row.get("met"), bool):
        return "met" if row["met"] else "**not met**"
    match = _TARGET.match(str(row.get("target") or ""))
    if not match or not isinstance(row.get("figure"), (int, float)):
        return ""
    op, bound, unit = match.group(1), float(match.group(2).replace(",", "")), (match.group(3) or "").strip()
    if unit == "x":
        value = ratio(row)
        if value is None:
            return ""
    else:
        value, figure_unit = row["figure"], str(row.get("unit") or "")
        if unit and unit != figure_unit:
            if unit in _UNIT_SCALE and figure_unit in _UNIT_SCALE:
                value = value * _UNIT_SCALE[figure_unit] / _UNIT_SCALE[unit]
            else:
                return ""
    ok = {"<": value < bound, "<=": value <= bound, ">": value > bound, ">=": value >= bound}[op]
    return "met" if ok else "**not met**"


def _cell(value) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".") if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def render(outcomes: list[Outcome], others: dict[str, str], command: str, started: dt.datetime, total: float, server: str) -> str:
    revision = _command_output(["git", "-C", str(PROJECT_DIR), "rev-parse", "--short", "HEAD"]).strip()
    dirty = _command_output(["git", "-C", str(PROJECT_DIR), "status", "--porcelain", "--untracked-files=no"]).strip()
    lines = [
        "# Benchmark results",
        "",
        "Written by `make bench` (bench/run_all.py); do not edit by hand. bench/README.md explains",
        "each benchmark and keeps the history of notable runs.",
        "",
        f"- date: {started:%Y-%m-%d %H:%M} UTC, {total / 60:.1f} minutes in all",
        f"- command: `{command}`",
        f"- revision: {revision or 'unknown'}{' with uncommitted changes' if dirty else ''}",
        f"- database: {server}",
    ]
    lines += [f"- {key}: {value}" for key, value in machine().items()]
    lines += [
        "",
        "| benchmark | figure | unit | target | verdict | baseline (same run) | ratio | notes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for outcome in outcomes:
        for row in outcome.rows:
            lines.append(
                "| "
                + " | ".join(
                    _cell(v)
                    for v in (
                        row["name"], row["figure"], row.get("unit"), row.get("target"), verdict(row),
                        row.get("baseline"), ratio(row), row.get("notes"),
                    )
                )
                + " |"
            )
    lines += ["", "| module | seconds | outcome |", "|---|---|---|"]
    for outcome in outcomes:
        result = (
            f"**failed**: {_cell(outcome.error)} (log: bench/out/{outcome.module}.log)"
            if outcome.error
            else f"{len(outcome.rows)} rows"
        )
        lines.append(f"| `bench/{outcome.module}.py` | {outcome.seconds:,.0f} | {result} |")
    for module, reason in others.items():
        lines.append(f"| `bench/{module}.py` | | not run by `make bench`: {_cell(reason)} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="comma-separated benchmark names (e.g. revenue_bench or revenue)")
    parser.add_argument("--quick", action="store_true", help="smaller data sets; figures not comparable")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where to write the results")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--rows-to", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.one:
        try:
            run_one(args.one, args.rows_to)
        except Exception:
            traceback.print_exc()
            return 1
        return 0

    benchmarks, others = discover()
    if args.only:
        wanted = {w if w.endswith(SUFFIX) else w + SUFFIX for w in args.only.split(",")}
        unknown = wanted - set(benchmarks)
        if unknown:
            parser.error(f"no benchmark named {', '.join(sorted(unknown))}; there are {', '.join(benchmarks)}")
        benchmarks = [b for b in benchmarks if b in wanted]
    env = {**os.environ, "BENCH_QUICK": "1" if args.quick else os.environ.get("BENCH_QUICK", "0")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_DIR), env.get("PYTHONPATH")]))

    started, clock = dt.datetime.now(dt.UTC), time.perf_counter()
    server = postgres_version(BenchContext.from_env().server_url)
    outcomes = []
    for name in benchmarks:
        print(f"== bench/{name}.py", flush=True)
        outcome = run_in_subprocess(name, env, BENCH_DIR / "out" / f"{name}.log")
        outcomes.append(outcome)
        print(f"   {outcome.seconds:,.0f} s: " + (f"FAILED: {outcome.error}" if outcome.error else f"{len(outcome.rows)} rows"), flush=True)

    command = shlex.join(["python", "-m", "bench.run_all", *(argv if argv is not None else sys.argv[1:])])
    text = render(outcomes, others, command, started, time.perf_counter() - clock, server)
    args.results.write_text(text)
    print(f"wrote {args.results}")
    return 1 if any(o.error for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
