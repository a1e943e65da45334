"""Generator: time to simulate and load 10 million events (organizations, users, events, then the
indexes and foreign keys re-built), and the loading process's memory, which must not grow with
the number of events.

    python -m bench.generator_bench                       # 10 tenants x 8,300 users: ~10M events
    python -m bench.generator_bench --users-per-tenant 800   # ~1M events, a quick look

Uses a scratch database on BENCH_DATABASE_URL, else DATABASE_URL, else the embedded server,
dropped afterwards. The range is fixed (14 months of 2024-2025) so that runs are comparable.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import time

from analytics_pipeline.dev import generator, load
from bench.scratch import scratch_database

TENANTS = 10
USERS_PER_TENANT = 8_300
START, END = dt.date(2024, 1, 1), dt.date(2025, 3, 1)
TARGET_SECONDS = 120


def _rss_mb() -> float:
    """Resident memory of this process now (Linux), in MB."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def measure(tenants: int = TENANTS, users_per_tenant: int = USERS_PER_TENANT) -> dict:
    options = generator.SeedOptions(
        tenants=tenants, users_per_tenant=users_per_tenant, start=START, end=END, seed=1,
        malformed_rate=0.001, late_rate=0.01,
    )
    samples: list[tuple[int, float]] = []  # (users done, RSS MB)
    done = 0
    phases: dict[str, float] = {}

    def progress(users: int) -> None:
        nonlocal done
        done += users
        if done % 1_000 == 0:
            samples.append((done, _rss_mb()))

    with scratch_database("generator") as engine:
        url = engine.url.render_as_string(hide_password=False)
        started = time.perf_counter()
        result = load.load(
            url, options, progress=progress,
            on_phase=lambda _: phases.setdefault("copied", time.perf_counter() - started),
        )
        total = time.perf_counter() - started
    first_tenant = [mb for users, mb in samples if users <= users_per_tenant]
    return {
        "events": result.events,
        "users": result.users,
        "seconds": total,
        "copy_seconds": phases.get("copied", total),
        "rss_after_first_tenant_mb": first_tenant[-1] if first_tenant else samples[0][1],
        "rss_peak_mb": max(mb for _, mb in samples),
        "options": options,
    }


def run(ctx=None) -> list[dict]:
    m = measure()
    machine = f"{os.cpu_count()} cores"
    rate = m["events"] / m["seconds"]
    return [
        {
            "name": "generator: simulate and load ~10M events (COPY, then indexes and foreign keys)",
            "figure": round(m["seconds"], 1),
            "unit": "s",
            "target": f"< {TARGET_SECONDS} s",
            "baseline": f"{m['events']:,} events, {m['users']:,} users; {rate:,.0f} events/s",
            "ratio": round(m["seconds"] / TARGET_SECONDS, 2),
            "notes": f"COPY phase {m['copy_seconds']:.0f} s, index and foreign-key rebuild "
                     f"{m['seconds'] - m['copy_seconds']:.0f} s; {machine}",
        },
        {
            "name": "generator: peak memory of the loading process",
            "figure": round(m["rss_peak_mb"]),
            "unit": "MB",
            # Flat: the peak over the whole load stays near the RSS after the first of its tenants.
            "target": "<= 1.25x the RSS after the first tenant",
            "baseline": f"{m['rss_after_first_tenant_mb']:.0f} MB after the first tenant "
                        f"(~{m['events'] // TENANTS:,} events)",
            "ratio": round(m["rss_peak_mb"] / m["rss_after_first_tenant_mb"], 2),
            "notes": "RSS sampled every 1,000 users",
        },
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=TENANTS)
    parser.add_argument("--users-per-tenant", type=int, default=USERS_PER_TENANT)
    args = parser.parse_args()
    if (args.tenants, args.users_per_tenant) == (TENANTS, USERS_PER_TENANT):
        rows = run()
    else:
        m = measure(args.tenants, args.users_per_tenant)
        rows = [{k: v for k, v in m.items() if k != "options"}]
    for row in rows:
        print(row)


if __name__ == "__main__":
    main()
