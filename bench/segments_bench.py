"""revenue_segments at scale: a generated data set (bench/datasets.py) whose subscriptions are
spread over 50 plans per tenant.

    python -m bench.segments_bench [--sizes 1m_wide,10m]

For each size: the full single-run backfill of revenue_aggregates (its absorb builds the MRR
state and the segment state), then the full single-run backfill of revenue_segments over the same
14 months, as a ratio to the first (target <= 1.5x on the 10M set); the build of the segment
state alone (the statements the absorb runs, over every customer, timed apart); the hourly run of
revenue_segments (the data set's last two days); the sizes of the segment state and of the
table.

The 1m_wide set has six tenants of 1,400 users (about a million events), so that each has
enough customers for 50 plans; the 10m set has 1,700 users in each of its 50 tenants.
The generator names a dozen plans (three tiers, four intervals); here each plan_id of a
subscription event is replaced by one of 50, chosen from the event's id: every tenant has about
50, and nearly every plan change moves the customer's MRR to another plan (a transfer).
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

from .datasets import END, SCAN_RATIO_TARGET_EVENTS, START, dataset_clone, event_count

PLANS_PER_TENANT = 50

SPREAD_PLANS = f"""
UPDATE analytics_events
SET event_data = jsonb_set(
    event_data, '{{plan_id}}',
    to_jsonb('plan_' || abs(hashtext(id)) % {PLANS_PER_TENANT})
)
WHERE event_type IN ('subscription_started', 'subscription_changed')
  AND jsonb_typeof(event_data -> 'plan_id') = 'string'
"""


def _materialize(url: str, first: str, last: str, asset: str) -> dict:
    """Runs in a child process, so that its peak memory is the run's alone."""
    import dagster as dg

    from analytics_pipeline.aggregation.partitions import partition_range_tags
    from analytics_pipeline.core.resources import pipeline_resources
    from analytics_pipeline.revenue.assets import (
        customer_sources,
        payment_history,
        revenue_aggregates,
        subscription_history,
    )
    from analytics_pipeline.revenue.segments import revenue_segments

    started = time.perf_counter()
    result = dg.materialize(
        [subscription_history, payment_history, customer_sources, revenue_aggregates, revenue_segments],
        selection=[asset],
        resources=pipeline_resources(url),
        tags=partition_range_tags(dt.date.fromisoformat(first), dt.date.fromisoformat(last)),
    )
    wall = time.perf_counter() - started
    metadata = next(
        m.metadata for m in result.asset_materializations_for_node(asset) if m.asset_key == dg.AssetKey(asset)
    )
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    return {
        "success": result.success,
        "checks_failed": sorted(name for name, passed in checks.items() if not passed),
        "wall_seconds": wall,
        "asset_seconds": metadata["duration_seconds"].value,
        "rows_written": metadata["rows_written"].value,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _in_child(*args) -> dict:
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(_materialize, *args).result()


def _segment_state_build(url: str) -> float:
    """The segment state of every customer, rebuilt with the absorb's statements, rolled back."""
    from analytics_pipeline.revenue.assets import load

    engine = db.engine_for(url)
    with engine.connect() as conn, conn.begin() as transaction:
        started = time.perf_counter()
        conn.execute(sa.text(
            "CREATE TEMP TABLE revenue_segment_changed_customers ON COMMIT DROP AS "
            "SELECT tenant_id, user_id, min(occurred_at)::date AS from_day FROM subscription_events "
            "GROUP BY tenant_id, user_id"
        ))
        conn.execute(sa.text("ANALYZE revenue_segment_changed_customers"))
        for name in ("delete_customer_segment_days", "insert_customer_segment_days",
                     "delete_tenant_segment_days", "insert_tenant_segment_days"):
            conn.execute(sa.text(load(f"segments/{name}")))
        elapsed = time.perf_counter() - started
        transaction.rollback()
    return elapsed


def _spread_plans(url: str) -> int:
    engine = db.engine_for(url)
    with engine.begin() as conn:
        conn.execute(sa.text(SPREAD_PLANS))
        plans = conn.execute(sa.text(
            "SELECT round(avg(n)) FROM (SELECT count(DISTINCT event_data ->> 'plan_id') AS n FROM analytics_events "
            "WHERE event_type = 'subscription_started' GROUP BY tenant_id) AS t"
        )).scalar_one()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE analytics_events"))
    return int(plans)


def measure(label: str) -> list[dict]:
    with dataset_clone(label) as url:
        plans = _spread_plans(url)
        events = event_count(url)
        last_day = END - dt.timedelta(days=1)
        revenue = _in_child(url, START.isoformat(), last_day.isoformat(), "revenue_aggregates")
        segments = _in_child(url, START.isoformat(), last_day.isoformat(), "revenue_segments")
        hourly = _in_child(url, (last_day - dt.timedelta(days=1)).isoformat(), last_day.isoformat(),
                           "revenue_segments")
        state_build = _segment_state_build(url)
        with db.engine_for(url).connect() as conn:
            state_bytes, table_bytes, customer_rows, tenant_rows = conn.execute(sa.text(
                "SELECT pg_total_relation_size('customer_segment_days') + pg_total_relation_size('tenant_segment_days'), "
                "pg_total_relation_size('revenue_segments'), (SELECT count(*) FROM customer_segment_days), "
                "(SELECT count(*) FROM tenant_segment_days)")).one()
    n = f"{events / 1e6:.1f}M events, {plans} plans per tenant"
    failed = segments["checks_failed"] + revenue["checks_failed"]
    ratio_target = ("<= 1.5x the revenue backfill" if events >= SCAN_RATIO_TARGET_EVENTS
                    else "none at this size (<= 1.5x is stated for the 10M set)")
    return [
        {"name": f"revenue backfill, 14 months in one run, segment state included ({n})",
         "figure": round(revenue["asset_seconds"], 2), "unit": "s",
         "notes": f"{revenue['rows_written']:,} rows; Dagster run wall time {revenue['wall_seconds']:.1f} s"},
        {"name": f"segments backfill, 14 months in one run ({n})",
         "figure": round(segments["asset_seconds"], 2), "unit": "s", "target": ratio_target,
         "baseline": round(revenue["asset_seconds"], 2),
         "ratio": round(segments["asset_seconds"] / revenue["asset_seconds"], 2),
         "notes": f"baseline: the revenue backfill above; {segments['rows_written']:,} rows; "
                  f"peak RSS {segments['peak_rss_mb']:.0f} MB; checks failed: {failed or 'none'}"},
        {"name": f"segment state of every customer, built alone (part of the revenue backfill) ({n})",
         "figure": round(state_build, 2), "unit": "s",
         "notes": f"{customer_rows:,} customer rows, {tenant_rows:,} tenant rows, "
                  f"{state_bytes / 1e6:,.0f} MB with indexes"},
        {"name": f"segments hourly run, 2 day partitions ({n})",
         "figure": round(hourly["asset_seconds"], 2), "unit": "s", "target": "< 2 s",
         "notes": f"revenue_segments {table_bytes / 1e6:,.0f} MB with indexes"},
    ]


def run(ctx=None) -> list[dict]:
    default = "1m_wide" if ctx is not None and ctx.quick else "1m_wide,10m"
    sizes = os.environ.get("BENCH_SIZES", default).split(",")
    return [row for label in sizes for row in measure(label)]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1m_wide,10m")
    args = parser.parse_args()
    os.environ["BENCH_SIZES"] = args.sizes
    for row in run():
        print(json.dumps(row))
