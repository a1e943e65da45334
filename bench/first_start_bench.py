"""The first start of `make dev` (results: bench/README.md): from the command, dependencies
installed, on an empty database, to every partition of the demo backfill materialized.

`analytics-pipeline dev` runs as a user runs it, on a new database of the bench server, with its
own ANALYTICS_HOME; it migrates, loads the demo, starts Dagster and launches the backfill. The
figure is taken from outside (from starting the process to the line saying that every partition
is materialized); the phases are read from its output. Then it is stopped with SIGINT.

    .venv/bin/python -m bench.first_start_bench
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from bench.scratch import server_url

PROJECT_DIR = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 90
TIMEOUT_SECONDS = 600
DONE = re.compile(r"every partition of the backfill is materialized")
LOADED = re.compile(r"loaded .* events .* in ([\d.]+) s")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure() -> dict:
    base = make_url(server_url())
    name = f"bench_first_start_{uuid.uuid4().hex[:8]}"
    admin = base.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = base.set(database=name).render_as_string(hide_password=False)
    home = Path(tempfile.mkdtemp(prefix="first_start_"))
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_PG_URL", "SMTP_HOST")}
    env |= {"DATABASE_URL": url, "ANALYTICS_HOME": str(home)}
    command = [str(Path(sys.executable).parent / "analytics-pipeline"), "dev", "--port", str(_free_port())]
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=PROJECT_DIR, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    seconds = loaded = None
    try:
        for line in process.stdout:
            if (match := LOADED.search(line)) and loaded is None:
                loaded = float(match[1])
            if DONE.search(line):
                seconds = time.perf_counter() - started
                break
            if time.perf_counter() - started > TIMEOUT_SECONDS:
                break
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return {"seconds": seconds, "demo_load_seconds": loaded, "load_before": load_before,
            "load_after": os.getloadavg()[0]}


def run(ctx=None) -> list[dict]:
    result = measure()
    notes = (f"demo load {result['demo_load_seconds']} s of it; load average {result['load_before']:.1f} "
             f"before, {result['load_after']:.1f} after; 2 cores")
    return [{
        "name": "make dev, first start: migrate, load the demo (~1M events), start Dagster, every "
                "partition of the backfill materialized",
        "figure": round(result["seconds"]) if result["seconds"] is not None else None,
        "unit": "s",
        "target": f"< {TARGET_SECONDS} s",
        "notes": notes if result["seconds"] is not None else f"not done within {TIMEOUT_SECONDS} s; {notes}",
    }]


if __name__ == "__main__":
    for row in run():
        print(row)
