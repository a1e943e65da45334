"""Benchmark of tournament_aggregates and user_cohorts (results: bench/README.md).

For each generated event set (bench/datasets.py: 50 tenants, 14 months, cloned per run):
- full single-run backfill of tournament_aggregates and of user_cohorts from empty state, beside
  one hand-written GROUP BY scan of the same events in the same process, as a ratio;
- the daily user_cohorts run (the schedule's three months, after a day of new events) and the
  hourly tournament_aggregates run (today and yesterday, after an hour of new events). The
  generated events end before the day the benchmark runs, so the new events are the data set's
  last day (hour) by created_at: once the states have absorbed everything, those events are
  committed again, as if they had just arrived (derived state absorbs in commit order).

Each measurement runs in a fresh subprocess, so its peak RSS is its own; PostgreSQL's share of
the work is reported as temp_bytes spilled by the database during the measurement.

    .venv/bin/python -m bench.tournaments_cohorts_bench                # 1M and 10M events
    .venv/bin/python -m bench.tournaments_cohorts_bench --sizes 1m

The server is BENCH_DATABASE_URL's (bench/scratch.py). `run(ctx)` returns the rows for
`make bench`; ctx may be a mapping or an object with an optional `sizes` (labels of
bench/datasets.py).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
import time

import sqlalchemy as sa

from analytics_pipeline.core import db

from .run_all import setting

SIZES = ("1m", "10m")

# Per aggregate: its state tables, its states' watermarks, its own table.
STATE = {
    "tournament_aggregates": (
        ("tournament_history",), ("tournament_history",),
    ),
    "user_cohorts": (
        ("user_signups", "user_activity_months"), ("user_signups", "user_activity_months"),
    ),
}

# The baseline: one pass over every event, grouped the way the aggregates group, with the same
# validation, in the database.
BASELINE_SCAN_SQL = """
SELECT tenant_id, event_type, date_trunc('day', "timestamp") AS day,
       count(*), sum(analytics_amount(event_data))
FROM analytics_events
WHERE analytics_event_problem(event_type, event_data, user_id, "timestamp", created_at) IS NULL
GROUP BY 1, 2, 3
"""


# --- measurements (each in its own process) --------------------------------------------------------


def _temp_bytes(url: str) -> int:
    with db.engine_for(url).connect() as conn:
        return conn.execute(
            sa.text("SELECT temp_bytes FROM pg_stat_database WHERE datname = current_database()")
        ).scalar()


def _reset_state(url: str, aggregate: str) -> None:
    """Empty the aggregate's state and rows, as before its first backfill (malformed_events is
    shared and only ever gains copies, so it stays)."""
    tables, states = STATE[aggregate]
    with db.engine_for(url).begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {', '.join(tables)}, {aggregate}"))
        conn.execute(sa.text("DELETE FROM state_watermarks WHERE state_name = ANY(:s)"), {"s": list(states)})


def _rewind_state(url: str, aggregate: str, by: dt.timedelta) -> None:
    """Make the next run absorb the last `by` of the data set's events (by created_at) again, as
    if they had just arrived. The generated events end before the day the benchmark runs, and
    derived state absorbs in commit order (analytics_pipeline/aggregation/state.py): the aggregate's states
    have absorbed every event (their backfill ran first), then those events are committed again,
    by a later transaction than the states' snapshots. Absorbing is idempotent, so the states'
    rows stay as they are: the run does the work of absorbing them, as it would new events."""
    from .datasets import commit_again

    states = list(STATE[aggregate][1])
    engine = db.engine_for(url)
    with engine.begin() as conn:
        # Every event committed so far is in these states (an earlier measurement may have
        # committed some again for other states): their snapshot is taken now.
        conn.execute(
            sa.text(
                "UPDATE state_watermarks SET absorbed_snapshot = pg_current_snapshot() "
                "WHERE state_name = ANY(:s) AND absorbed_snapshot IS NOT NULL"
            ),
            {"s": states},
        )
        if conn.execute(
            sa.text("SELECT count(*) FROM state_watermarks WHERE state_name = ANY(:s) AND absorbed_snapshot IS NOT NULL"),
            {"s": states},
        ).scalar_one() != len(states):
            raise RuntimeError(f"{aggregate}'s states have not absorbed the data set: run its backfill first")
    commit_again(url, by)


def _materialize(url: str, asset_name: str, first: str, last: str) -> None:
    import dagster as dg

    from analytics_pipeline.aggregation.partitions import partition_range_tags
    from analytics_pipeline.cohorts import assets as cohorts
    from analytics_pipeline.core.resources import pipeline_resources
    from analytics_pipeline.tournaments import assets as tournaments

    asset = {"tournament_aggregates": tournaments.tournament_aggregates, "user_cohorts": cohorts.user_cohorts}[asset_name]
    result = dg.materialize(
        [asset],
        tags=partition_range_tags(dt.date.fromisoformat(first), dt.date.fromisoformat(last)),
        resources=pipeline_resources(url),
    )
    assert result.success


def _measure(kind: str, url: str) -> dict:
    """One measurement in this (fresh) process: seconds, peak RSS, database temp bytes. The
    modules are imported before the clock starts: a run's time, not its code's import."""
    from analytics_pipeline.aggregation.partitions import daily_partitions, monthly_partitions
    from analytics_pipeline.tournaments import assets as tournaments  # noqa: F401

    today = dt.date.today()
    if kind == "backfill_tournaments":
        _reset_state(url, "tournament_aggregates")
    elif kind == "backfill_cohorts":
        _reset_state(url, "user_cohorts")
    elif kind == "daily_cohorts":
        _rewind_state(url, "user_cohorts", dt.timedelta(days=1))
    elif kind == "hourly_tournaments":
        _rewind_state(url, "tournament_aggregates", dt.timedelta(hours=1))
    temp_before = _temp_bytes(url)
    started = time.perf_counter()
    if kind == "scan":
        with db.engine_for(url).connect() as conn:
            conn.execute(sa.text(BASELINE_SCAN_SQL)).all()
    elif kind in ("backfill_tournaments", "hourly_tournaments"):
        keys = daily_partitions.get_partition_keys()
        first = keys[0] if kind == "backfill_tournaments" else keys[-2]
        _materialize(url, "tournament_aggregates", first, keys[-1])
    elif kind in ("backfill_cohorts", "daily_cohorts"):
        keys = monthly_partitions.get_partition_keys()
        first = keys[0] if kind == "backfill_cohorts" else keys[max(0, len(keys) - 3)]
        _materialize(url, "user_cohorts", first, keys[-1])
    seconds = time.perf_counter() - started
    return {
        "seconds": round(seconds, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "db_temp_mb": round((_temp_bytes(url) - temp_before) / 2**20, 1),
        "today": today.isoformat(),
    }


def _measure_in_subprocess(kind: str, url: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "bench.tournaments_cohorts_bench", "--measure", kind, "--url", url],
        capture_output=True, text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"measurement {kind} failed:\n" + "\n".join(done.stderr.splitlines()[-15:]))
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- the benchmark ------------------------------------------------------------------------------


def run(ctx=None) -> list[dict]:
    from .datasets import dataset_clone, event_count

    rows = []
    for size in setting(ctx, "sizes", SIZES):
        with dataset_clone(size) as url:
            rows += _run_on(url, event_count(url))
    return rows


def _ensure_state_tables(url: str) -> None:
    """A data set generated before revision 0006 was filled in is stamped at head without the
    derived state tables; create them as that revision does."""
    import importlib.util

    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

    from analytics_pipeline.core.settings import MIGRATIONS_DIR

    with db.engine_for(url).begin() as conn:
        if sa.inspect(conn).has_table("tournament_history"):
            return
        path = MIGRATIONS_DIR / "versions" / "0006_tournament_cohort_state.py"
        spec = importlib.util.spec_from_file_location("revision_0006", path)
        revision = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(revision)
        with Operations.context(MigrationContext.configure(conn)):
            revision.upgrade()


def _run_on(url: str, actual: int) -> list[dict]:
    from .datasets import scan_ratio_target

    _ensure_state_tables(url)
    rows = []
    label = f"{actual / 1e6:.1f}M events"
    scan = _measure_in_subprocess("scan", url)
    for kind, title in (("backfill_tournaments", "tournament_aggregates full backfill"),
                        ("backfill_cohorts", "user_cohorts full backfill")):
        m = _measure_in_subprocess(kind, url)
        rows.append({
            "name": f"{title} ({label})", "figure": m["seconds"], "unit": "s",
            **scan_ratio_target(actual), "baseline": scan["seconds"],
            "ratio": round(m["seconds"] / scan["seconds"], 2),
            "events_per_s": round(actual / m["seconds"]),
            "peak_rss_mb": m["peak_rss_mb"], "db_temp_mb": m["db_temp_mb"],
        })
    for kind, title, target in (
        ("daily_cohorts", "user_cohorts daily run (3 months, 1 day of new events)", "< 2 s"),
        ("hourly_tournaments", "tournament_aggregates hourly run (2 days, 1 hour of new events)", "< 2 s"),
    ):
        m = _measure_in_subprocess(kind, url)
        rows.append({
            "name": f"{title} ({label})", "figure": m["seconds"], "unit": "s", "target": target,
            "baseline": None, "ratio": None,
            "peak_rss_mb": m["peak_rss_mb"], "db_temp_mb": m["db_temp_mb"],
        })
    return rows


def _table(rows: list[dict]) -> str:
    lines = ["| measurement | figure | target | baseline (scan) | ratio | peak RSS MB | DB temp MB |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        if r.get("figure") is None:
            lines.append(f"| {r['name']} | {r.get('note', '')} | | | | | |")
            continue
        lines.append(
            f"| {r['name']} | {r['figure']} {r['unit']} | {r['target']} | "
            f"{r['baseline'] if r['baseline'] is not None else ''} | "
            f"{r['ratio'] if r['ratio'] is not None else ''} | "
            f"{r.get('peak_rss_mb', '')} | {r.get('db_temp_mb', '')} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(SIZES), help="data set labels, e.g. 1m,10m")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(_measure(args.measure, args.url)))
        return
    rows = run({"sizes": args.sizes.split(",")})
    print(f"{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}, {dt.date.today()}")
    print(_table(rows))


if __name__ == "__main__":
    main()
