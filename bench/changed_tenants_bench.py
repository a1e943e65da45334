"""What finding the tenants a run changed costs (aggregation/runs.py: digest_window and changed_tenants),
against the probe it replaced (the distinct tenant_id of the window's rows, read before and after
the write), at 1000 tenants x 3 years of aggregates.

    python -m bench.changed_tenants_bench     # BENCH_DATABASE_URL, else DATABASE_URL, else embedded

The rows are bench.dashboard_bench's revenue_aggregates (1,305,000) and bench.api_bench's cohort
triangle (666,000), written straight into a scratch database. Windows: a backfill of everything,
the hourly run's two days, the daily cohort run's three months. Each figure is the median of three,
inside one transaction with the runs' settings (tune_for_aggregation); the run does both halves
once.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import time

import sqlalchemy as sa

from analytics_pipeline.aggregation import runs
from analytics_pipeline.aggregation.periods import TOUCHED_PERIODS_SQL
from analytics_pipeline.cohorts.assets import USER_COHORTS_AGGREGATE
from analytics_pipeline.revenue.assets import REVENUE_AGGREGATE

from .api_bench import COHORT_ROWS
from .scratch import scratch_database

TENANTS = 1000

# The probe the digest replaced (`tenants_sql` until 1ade506), run once before and once after the write.
PROBES = {
    "revenue_aggregates": (
        f"SELECT DISTINCT r.tenant_id FROM ({TOUCHED_PERIODS_SQL}) AS t "
        "JOIN revenue_aggregates AS r USING (period_type, period_start)"
    ),
    "user_cohorts": "SELECT DISTINCT r.tenant_id " + USER_COHORTS_AGGREGATE.window_rows_sql,
}


def _median_seconds(fn, repeat: int = 3) -> float:
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def run(ctx=None) -> list[dict]:
    import bench.dashboard_bench as dashboard

    tenants = 100 if ctx and ctx.quick else TENANTS
    dashboard.TENANTS = tenants
    rows: list[dict] = []
    with scratch_database("changed_tenants") as engine:
        with engine.begin() as conn:
            revenue_rows = dashboard._fill(conn)
            conn.execute(sa.text(COHORT_ROWS), {"tenants": tenants})
            cohort_rows = conn.execute(sa.text("SELECT count(*) FROM user_cohorts")).scalar_one()
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text("VACUUM ANALYZE"))
        cases = [
            (REVENUE_AGGREGATE, "backfill (3 years)", dt.date(2023, 1, 1), dt.date(2026, 1, 1)),
            (REVENUE_AGGREGATE, "hourly run (2 days)", dt.date(2025, 12, 30), dt.date(2026, 1, 1)),
            (USER_COHORTS_AGGREGATE, "backfill (36 months)", dt.date(2023, 1, 1), dt.date(2026, 1, 1)),
            (USER_COHORTS_AGGREGATE, "daily run (3 months)", dt.date(2025, 10, 1), dt.date(2026, 1, 1)),
        ]
        for aggregate, label, start, end in cases:
            params = {"window_start": start, "window_end": end}
            probe = sa.text(PROBES[aggregate.name])
            with engine.begin() as conn:
                runs.tune_for_aggregation(conn)
                window_rows = conn.execute(sa.text("SELECT count(*) " + aggregate.window_rows_sql), params).scalar()
                before = _median_seconds(lambda: conn.execute(probe, params).all())
                digest = _median_seconds(lambda: runs.digest_window(conn, aggregate, params))
                compare = _median_seconds(lambda: runs.changed_tenants(conn, aggregate, params))
            figure, baseline = (digest + compare) * 1000, 2 * before * 1000
            rows.append({
                "name": f"changed tenants: {aggregate.name} {label}, digest before + compare after",
                "figure": round(figure), "unit": "ms", "baseline": round(baseline),
                "ratio": round(figure / baseline, 2) if baseline else None,
                "notes": (f"{window_rows:,} rows in the window ({revenue_rows:,} revenue, {cohort_rows:,} cohort rows, "
                          f"{tenants} tenants); digest {digest * 1000:.0f} ms + compare {compare * 1000:.0f} ms; "
                          f"baseline: the distinct-tenant probe it replaced, twice; "
                          f"load average {os.getloadavg()[0]:.1f}"),
            })
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
