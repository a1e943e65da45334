"""revenue_aggregates at scale, on the generated data sets (bench/datasets.py).

    python -m bench.revenue_bench [--sizes 1m,10m]

For each size: the full single-run backfill of the 14 months (time, events/s, the run process's
peak memory) beside one hand-written GROUP BY over the same events, as a ratio (target <= 2x on
the 10M set); the hourly run (the data set's last two days; target < 2 s, and on a larger set
<= 1.5x its time on the smallest: it must not grow with history); one new-events sensor tick after
an hour of new events (target < 1 s); the sizes of the payment history and of the MRR state.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import json
import multiprocessing
import os
import resource
import time

import sqlalchemy as sa

from analytics_pipeline.core import db

from .datasets import END, SCAN_RATIO_TARGET_EVENTS, START, commit_again, dataset_clone, event_count, scan_ratio_target

BASELINE_SCAN = """
SELECT tenant_id, "timestamp"::date, event_type, count(*), sum(analytics_amount(event_data))
FROM analytics_events
WHERE analytics_event_problem(event_type, event_data, user_id, "timestamp", created_at) IS NULL
GROUP BY 1, 2, 3
"""


def _materialize(url: str, first: str, last: str) -> dict:
    """Runs in a child process, so that its peak memory is the run's alone."""
    import dagster as dg

    from analytics_pipeline.aggregation.partitions import partition_range_tags
    from analytics_pipeline.core.resources import pipeline_resources
    from analytics_pipeline.revenue.assets import payment_history, revenue_aggregates, subscription_history

    started = time.perf_counter()
    result = dg.materialize(
        [subscription_history, payment_history, revenue_aggregates],
        selection=["revenue_aggregates"],
        resources=pipeline_resources(url),
        tags=partition_range_tags(dt.date.fromisoformat(first), dt.date.fromisoformat(last)),
    )
    wall = time.perf_counter() - started
    metadata = next(
        m.metadata for m in result.asset_materializations_for_node("revenue_aggregates")
        if m.asset_key == dg.AssetKey("revenue_aggregates")
    )
    return {
        "success": result.success,
        "wall_seconds": wall,
        "asset_seconds": metadata["duration_seconds"].value,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _in_child(*args) -> dict:
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(_materialize, *args).result()


def _timed_sql(url: str, sql: str) -> float:
    with db.engine_for(url).connect() as conn:
        started = time.perf_counter()
        conn.execute(sa.text(sql)).all()
        return time.perf_counter() - started


def _sensor_tick(url: str) -> float:
    import dagster as dg

    from analytics_pipeline.aggregation import state
    from analytics_pipeline.aggregation.new_events import new_events_sensor
    from analytics_pipeline.domains import touched_partitions
    from analytics_pipeline.core.resources import pipeline_resources
    from analytics_pipeline.tournaments.assets import absorb_tournament_history

    # Steady state: the runs have absorbed the events into the derived state tables and the
    # sensor's last tick saw them all; then an hour of events is committed.
    with db.engine_for(url).begin() as conn:
        absorb_tournament_history(conn)
        cursor = json.dumps({touched.asset: state.current_snapshot(conn) for touched in touched_partitions()})
    commit_again(url, dt.timedelta(hours=1))
    with dg.DagsterInstance.ephemeral() as instance:
        context = dg.build_sensor_context(
            cursor=cursor, instance=instance, resources=pipeline_resources(url)
        )
        started = time.perf_counter()
        new_events_sensor(touched_partitions())(context)
        return time.perf_counter() - started


def measure(label: str) -> list[dict]:
    rows = []
    with dataset_clone(label) as url:
        events = event_count(url)
        last_day = END - dt.timedelta(days=1)
        backfill = _in_child(url, START.isoformat(), last_day.isoformat())
        scan = _timed_sql(url, BASELINE_SCAN)
        hourly = _in_child(url, (last_day - dt.timedelta(days=1)).isoformat(), last_day.isoformat())
        with db.engine_for(url).connect() as conn:
            payment_state_bytes = conn.execute(
                sa.text("SELECT pg_total_relation_size('payment_events')")).scalar_one()
            mrr_state_bytes, customer_days = conn.execute(sa.text(
                "SELECT pg_total_relation_size('customer_mrr_days') + pg_total_relation_size('tenant_mrr_days'), "
                "(SELECT count(*) FROM customer_mrr_days)")).one()
        tick = _sensor_tick(url)
    n = f"{events / 1e6:.1f}M events"
    rows.append({"name": f"revenue backfill, 14 months in one run ({n})",
                 "figure": round(backfill["asset_seconds"], 2), "unit": "s",
                 **revenue_scan_ratio_target(events),
                 "baseline": round(scan, 2), "ratio": round(backfill["asset_seconds"] / scan, 2),
                 "notes": f"baseline: one GROUP BY over the same events; "
                          f"{events / backfill['asset_seconds']:,.0f} events/s; "
                          f"Dagster run wall time {backfill['wall_seconds']:.1f} s (recording each partition)"})
    rows.append({"name": f"revenue backfill peak memory of the run process ({n})",
                 "figure": round(backfill["peak_rss_mb"]), "unit": "MB",
                 "target": "flat in the number of events",
                 "notes": "compare the rows of the two data set sizes"})
    rows.append({"name": f"revenue hourly run, 2 day partitions ({n})",
                 "figure": round(hourly["asset_seconds"], 2), "unit": "s", "target": "< 2 s",
                 "notes": f"Dagster run wall time {hourly['wall_seconds']:.1f} s"})
    rows.append({"name": f"payment history (payment_events with its indexes) per million events ({n})",
                 "figure": round(payment_state_bytes / 1e6 / (events / 1e6), 1), "unit": "MB",
                 "notes": f"{payment_state_bytes / 1e6:,.0f} MB in all"})
    rows.append({"name": f"MRR state (customer_mrr_days and tenant_mrr_days with their indexes) per million events ({n})",
                 "figure": round(mrr_state_bytes / 1e6 / (events / 1e6), 1), "unit": "MB",
                 "notes": f"{mrr_state_bytes / 1e6:,.1f} MB in all; {customer_days:,} customer days"})
    rows.append({"name": f"new-events sensor tick after an hour of events, state absorbed ({n})",
                 "figure": round(tick * 1000), "unit": "ms", "target": "< 1000 ms"})
    return rows


def run(ctx=None) -> list[dict]:
    default = "1m" if ctx is not None and ctx.quick else "1m,10m"
    sizes = os.environ.get("BENCH_SIZES", default).split(",")
    rows = [row for label in sizes for row in measure(label)]
    return judge_memory(judge_hourly(rows))


def revenue_scan_ratio_target(events: int) -> dict:
    """The revenue backfill's bound is tighter than the other families' (bench/datasets.py)."""
    target = scan_ratio_target(events)
    if events >= SCAN_RATIO_TARGET_EVENTS:
        return {"target": "<= 2x the GROUP BY scan"}
    return target


def judge_hourly(rows: list[dict]) -> list[dict]:
    """The hourly run must not grow with history: each larger set's time against the smallest
    set's, measured in the same invocation."""
    hourly = [row for row in rows if row["name"].startswith("revenue hourly run")]
    for row in hourly[1:]:
        row["target"] = "<= 1.5x the smallest data set's hourly run"
        row["baseline"] = hourly[0]["figure"]
        row["notes"] = f"{row.get('notes', '')}; baseline: {hourly[0]['name']}"
    return rows


def judge_memory(rows: list[dict]) -> list[dict]:
    """"Flat in the number of events" compares sizes: each larger set's peak against the smallest
    set's, which becomes their baseline. With one size there is nothing to compare against."""
    peaks = [row for row in rows if "peak memory" in row["name"]]
    if len(peaks) < 2:
        return rows
    smallest = peaks[0]
    for row in peaks[1:]:
        row["target"] = "<= 1.25x the smallest data set's peak"
        row["baseline"] = smallest["figure"]
        row["notes"] = f"baseline: {smallest['name']}"
    return [row for row in rows if row is not smallest]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1m,10m")
    args = parser.parse_args()
    os.environ["BENCH_SIZES"] = args.sizes
    for row in run():
        print(json.dumps(row))
