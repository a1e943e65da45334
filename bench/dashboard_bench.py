"""Dashboard reads: p95 latency of one tenant's last 90 day rows of revenue_aggregates, at 1000
tenants and 3 years of rows (the specification's <100 ms target for aggregation queries).

    python -m bench.dashboard_bench            # uses BENCH_DATABASE_URL, else DATABASE_URL, else embedded

The rows are generated in SQL (1000 tenants x 1096 days of day rows plus their week, month,
quarter and year rows) into a scratch database that is dropped afterwards.
"""

from __future__ import annotations

import random
import statistics
import time

import sqlalchemy as sa

from bench.scratch import scratch_database

TENANTS = 1000
DAYS = 1096
QUERIES = 2000

DASHBOARD_QUERY = sa.text(
    """
    SELECT period_start, mrr, arr, new_revenue, churned_revenue, total_revenue
    FROM revenue_aggregates
    WHERE tenant_id = :tenant AND period_type = 'day' AND period_start >= DATE '2025-12-31' - 90
    ORDER BY period_start DESC
    """
)


def _fill(conn) -> int:
    conn.execute(sa.text(
        "INSERT INTO organizations (id, name) SELECT 't' || g, 'Org ' || g FROM generate_series(1, :n) g"
    ), {"n": TENANTS})
    conn.execute(sa.text(
        """
        INSERT INTO revenue_aggregates (id, tenant_id, period_start, period_end, period_type, mrr, arr,
            new_revenue, churned_revenue, expansion_revenue, total_revenue, payment_count,
            payment_success_count, refund_count, refund_amount)
        SELECT 't' || t || ':' || p.period_type || ':' || d, 't' || t, d,
               (d + p.length - interval '1 day')::date, p.period_type,
               1000 + t, (1000 + t) * 12, 5, 3, 1, 100, 10, 9, 1, 5
        FROM generate_series(1, :tenants) t
        CROSS JOIN (VALUES ('day', interval '1 day'), ('week', interval '7 days'),
                           ('month', interval '1 month'), ('quarter', interval '3 months'),
                           ('year', interval '1 year')) AS p(period_type, length)
        CROSS JOIN LATERAL (
            SELECT DISTINCT date_trunc(p.period_type, g)::date AS d
            FROM generate_series(DATE '2023-01-01', DATE '2023-01-01' + :days - 1, interval '1 day') g
        ) AS days
        """
    ), {"tenants": TENANTS, "days": DAYS})
    conn.execute(sa.text("ANALYZE revenue_aggregates"))
    return conn.execute(sa.text("SELECT count(*) FROM revenue_aggregates")).scalar_one()


def run(ctx=None) -> list[dict]:
    with scratch_database("dashboard") as engine:
        with engine.begin() as conn:
            total_rows = _fill(conn)
        rng = random.Random(1)
        timings = []
        with engine.connect() as conn:
            for _ in range(50):  # warm the cache as a running dashboard would
                conn.execute(DASHBOARD_QUERY, {"tenant": f"t{rng.randint(1, TENANTS)}"}).all()
            for _ in range(QUERIES):
                tenant = f"t{rng.randint(1, TENANTS)}"
                started = time.perf_counter()
                found = conn.execute(DASHBOARD_QUERY, {"tenant": tenant}).all()
                timings.append((time.perf_counter() - started) * 1000)
                assert len(found) == 91
            plan = "\n".join(r[0] for r in conn.execute(sa.text("EXPLAIN " + DASHBOARD_QUERY.text), {"tenant": "t1"}))
    p95 = statistics.quantiles(timings, n=20)[-1]
    return [
        {
            "name": "dashboard: one tenant's last 90 day rows of revenue_aggregates, p95",
            "figure": round(p95, 2),
            "unit": "ms",
            "target": "< 100 ms",
            "baseline": f"{total_rows:,} rows, {TENANTS} tenants x 3 years; median {statistics.median(timings):.2f} ms",
            "notes": "index scan" if "Index" in plan else plan,
        }
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
