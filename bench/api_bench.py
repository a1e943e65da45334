"""Dashboard API: latency cached and uncached, throughput, and the ratio to a direct SQL query of
the same rows, at 1000 tenants x 3 years of aggregates.

    python -m bench.api_bench        # BENCH_DATABASE_URL, else DATABASE_URL, else embedded;
                                     # BENCH_REDIS_URL, else 127.0.0.1:6379 where one answers, else embedded

Four requests are measured: a 90-day daily revenue series (/v1/revenue, 90 rows), a 24-month
cohort triangle (/v1/cohorts, 300 rows), a 12-month monthly revenue series by plan with 50 plans
per tenant (/v1/revenue/segments, 600 rows: the dashboard's "By plan") and the KPIs of those 50
plans for a month against the one before (/v1/kpis/segments, 50 x 23 KPIs). The API runs as `analytics-pipeline api` (uvicorn, its
default worker count: API_WORKERS, else one per core up to 4) in processes of its own; a bounded
load generator (asyncio, persistent HTTP/1.1 connections on loopback) sends a fixed number of
requests:
- latency: one connection, one request at a time; "uncached" requests each name a tenant and
  range never asked before (every one a cache miss, checked by X-Cache), "cached" ones repeat 100
  warmed keys (every one a hit). Figures are round trips seen by the client, an upper bound of the
  server's time.
- throughput: 16 connections at once, on the cached keys and on fresh keys.
- baseline: the endpoint's own SQL run directly on one connection, same tenants and ranges.
The load generator shares the machine's cores with the server and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import random
import statistics
import subprocess
import sys
import time
import uuid

import jwt
import redis
import sqlalchemy as sa

from analytics_pipeline.api.params import comparison
from analytics_pipeline.api.queries import comparison_params, load
from analytics_pipeline.api.settings import api_workers
from bench.dashboard_bench import _fill as fill_revenue
from bench.scratch import scratch_database

TENANTS = 1000
SECRET = "bench-secret-" + "x" * 40
LAST_DAY = dt.date(2025, 12, 31)  # bench.dashboard_bench's rows cover 2023-01-01 .. 2025-12-31
LATENCY_REQUESTS = 1000
CACHED_KEYS = 100
CONNECTIONS = 16
THROUGHPUT_REQUESTS = 6000

COHORT_ROWS = """
INSERT INTO user_cohorts (id, tenant_id, cohort_month, cohort_size, month_number, retained_users,
    retention_rate, revenue, ltv)
SELECT 't' || t || ':' || c || ':' || m, 't' || t, c, 100, m, 100 - m, 100 - m, 10 * (100 - m), m
FROM generate_series(1, :tenants) AS t
CROSS JOIN generate_series(DATE '2023-01-01', DATE '2025-12-01', interval '1 month') AS g(c)
CROSS JOIN LATERAL generate_series(0, ((DATE '2025-12-01' - c::date) / 30)::int) AS m
"""


# 50 plans per tenant (the cost case), month rows over the three years: each plan's MRR and
# a little of every movement and transfer, so that every KPI has a value.
PLANS = 50
SEGMENT_ROWS = """
INSERT INTO revenue_segments (id, tenant_id, period_start, period_end, period_type, dimension, value, mrr, arr,
    new_revenue, reactivation_revenue, expansion_revenue, contraction_revenue, churned_revenue,
    transfer_in_revenue, transfer_out_revenue, active_customers, new_customers, reactivated_customers,
    churned_customers, transferred_in_customers, transferred_out_customers)
SELECT 't' || t || ':month:' || m::date || ':plan:' || v, 't' || t, m, (m + interval '1 month' - interval '1 day')::date,
       'month', 'plan', v, 20 + p, (20 + p) * 12, 3, 1, 2, 1, 2, 1.5, 1.5, 4 + p % 5, 1, 0, 1, 1, 1
FROM generate_series(1, :tenants) AS t
CROSS JOIN generate_series(DATE '2023-01-01', DATE '2025-12-01', interval '1 month') AS m
CROSS JOIN LATERAL (SELECT p, 'plan-' || lpad(p::text, 2, '0') AS v FROM generate_series(1, :plans) AS p) AS plans
"""


def _quantiles(timings_ms: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(timings_ms, n=100, method="inclusive")
    return {"p50": round(cuts[49], 2), "p95": round(cuts[94], 2), "p99": round(cuts[98], 2)}


def _redis_url(ctx) -> tuple[str | None, dict]:
    url = os.environ.get("BENCH_REDIS_URL")
    if url:
        return url, {"REDIS_URL": url}
    try:
        with redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=0.5) as client:
            client.ping()
        return "redis://127.0.0.1:6379/0", {"REDIS_URL": "redis://127.0.0.1:6379/0"}
    except (redis.RedisError, OSError):
        return None, {}  # the API starts the embedded server under ANALYTICS_HOME


class Http:
    """One persistent HTTP/1.1 connection: send a GET, read status, X-Cache and body."""

    def __init__(self, port: int):
        self.port = port

    async def __aenter__(self):
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        return self

    async def __aexit__(self, *_):
        self.writer.close()

    async def get(self, path: str, token: str) -> tuple[int, str, float]:
        started = time.perf_counter()
        self.writer.write(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        await self.reader.readexactly(int(headers["content-length"]))
        return int(lines[0].split()[1]), headers.get("x-cache", ""), (time.perf_counter() - started) * 1000


async def _sequential(port: int, requests: list[tuple[str, str]]) -> list[tuple[int, str, float]]:
    async with Http(port) as http:
        return [await http.get(path, token) for path, token in requests]


async def _concurrent(port: int, requests: list[tuple[str, str]], connections: int) -> tuple[float, list]:
    queue = list(reversed(requests))
    results: list = []

    async def worker():
        async with Http(port) as http:
            while queue:
                path, token = queue.pop()
                results.append(await http.get(path, token))

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return time.perf_counter() - started, results


def _revenue_request(tenant: int, last: dt.date) -> tuple[str, dict]:
    first = last - dt.timedelta(days=89)
    return (f"/v1/revenue?period_type=day&from={first}&to={last}",
            {"tenant_id": f"t{tenant}", "period_type": "day", "date_from": first, "date_to": last})


def _cohort_request(tenant: int, last_month: dt.date) -> tuple[str, dict]:
    year, month = divmod(last_month.year * 12 + last_month.month - 1 - 23, 12)
    first = dt.date(year, month + 1, 1)
    return (f"/v1/cohorts?from={first:%Y-%m}&to={last_month:%Y-%m}",
            {"tenant_id": f"t{tenant}", "date_from": first, "date_to": last_month})


def _months_before(month: dt.date, months: int) -> dt.date:
    year, index = divmod(month.year * 12 + month.month - 1 - months, 12)
    return dt.date(year, index + 1, 1)


def _segment_request(tenant: int, last_month: dt.date) -> tuple[str, dict]:
    first = _months_before(last_month, 11)
    last = _months_before(last_month, -1) - dt.timedelta(days=1)
    return (f"/v1/revenue/segments?segment=plan&period_type=month&from={first}&to={last}",
            {"tenant_id": f"t{tenant}", "segment": "plan", "period_type": "month", "date_from": first, "date_to": last})


def _segment_kpis_request(tenant: int, month: dt.date) -> tuple[str, dict]:
    day = _months_before(month, -1) - dt.timedelta(days=1)  # its last day: two whole months compared
    spans = comparison("month", str(day), "complete")
    return (f"/v1/kpis/segments?segment=plan&period_type=month&day={day}&compare=complete",
            {"tenant_id": f"t{tenant}", "segment": "plan", **comparison_params(spans)})


def _start_api(url: str, port: int, ctx, redis_env: dict, prefix: str) -> subprocess.Popen:
    home = ctx.out_dir / "api_home" if ctx else None
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "API_JWT_PUBLIC_KEY", "API_JWT_AUDIENCE")}
    env.update(DATABASE_URL=url, API_JWT_SECRET=SECRET, API_CACHE_PREFIX=prefix, **redis_env)
    if home:
        env["ANALYTICS_HOME"] = str(home)
    process = subprocess.Popen(
        [sys.executable, "-c", "from analytics_pipeline.cli import run; run()", "api", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    import requests

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2).json()["status"] == "ready":
                return process
        except requests.ConnectionError:
            pass
        assert process.poll() is None, process.stderr.read().decode()
        time.sleep(0.3)
    process.kill()
    raise RuntimeError("the API did not become ready")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(ctx=None) -> list[dict]:
    quick = bool(ctx and ctx.quick)
    tenants = 100 if quick else TENANTS
    latency_requests = 200 if quick else LATENCY_REQUESTS
    rng = random.Random(7)
    tokens = {t: jwt.encode({"tenant_id": f"t{t}", "exp": dt.datetime.now(dt.UTC) + dt.timedelta(hours=6)}, SECRET)
              for t in range(1, tenants + 1)}
    rows: list[dict] = []
    workers = f"{api_workers()} worker{'s' if api_workers() > 1 else ''}"  # what `api` starts without --workers
    redis_url, redis_env = _redis_url(ctx)
    prefix = f"bench:{uuid.uuid4().hex[:8]}:"
    with scratch_database("api") as engine:
        import bench.dashboard_bench as dashboard

        dashboard.TENANTS = tenants
        with engine.begin() as conn:
            revenue_rows = fill_revenue(conn)
            conn.execute(sa.text(COHORT_ROWS), {"tenants": tenants})
            conn.execute(sa.text("ANALYZE user_cohorts"))
            cohort_rows = conn.execute(sa.text("SELECT count(*) FROM user_cohorts")).scalar_one()
            conn.execute(sa.text(SEGMENT_ROWS), {"tenants": tenants, "plans": PLANS})
            conn.execute(sa.text("ANALYZE revenue_segments"))
            segment_rows = conn.execute(sa.text("SELECT count(*) FROM revenue_segments")).scalar_one()
        port = _free_port()
        api = _start_api(engine.url.render_as_string(hide_password=False).replace("+psycopg", ""), port, ctx, redis_env, prefix)
        try:
            endpoints = {
                "90-day daily revenue series": (
                    "revenue_aggregates", lambda t, k: _revenue_request(t, LAST_DAY - dt.timedelta(days=k)), 900),
                "24-month cohort triangle": (
                    "cohorts", lambda t, k: _cohort_request(t, dt.date(2025 - k // 12, 12 - k % 12, 1)), 12),
                f"12-month monthly revenue by plan ({PLANS} plans)": (
                    "revenue_segments", lambda t, k: _segment_request(t, _months_before(dt.date(2025, 12, 1), k)), 12),
                f"KPIs of {PLANS} plans, a month against the one before": (
                    "kpis_segments", lambda t, k: _segment_kpis_request(t, _months_before(dt.date(2025, 12, 1), k)), 24),
            }
            for label, (sql_name, request, spread) in endpoints.items():
                # Fresh keys: tenant and range drawn without repeats; cached keys: 100 warmed ones.
                pairs = [(t, k) for t in range(1, tenants + 1) for k in range(1, spread + 1)]
                fresh_pairs = rng.sample(pairs, min(len(pairs), latency_requests + THROUGHPUT_REQUESTS // 3))
                fresh = [request(t, k) for t, k in fresh_pairs]
                warm = [request(t, 0) for t in rng.sample(range(1, tenants + 1), min(CACHED_KEYS, tenants))]

                sql = load(sql_name)
                sql_ms = []
                with engine.connect() as conn:
                    for _, params in fresh[:50]:
                        conn.execute(sql, params).all()
                    for _, params in fresh[:latency_requests]:
                        started = time.perf_counter()
                        conn.execute(sql, params).all()
                        sql_ms.append((time.perf_counter() - started) * 1000)
                sql_q = _quantiles(sql_ms)

                def calls(items):
                    return [(path, tokens[int(params["tenant_id"][1:])]) for path, params in items]

                uncached = asyncio.run(_sequential(port, calls(fresh[:latency_requests])))
                assert all(status == 200 and cache == "miss" for status, cache, _ in uncached), uncached[:3]
                asyncio.run(_sequential(port, calls(warm)))
                cached_calls = calls([warm[i % len(warm)] for i in range(latency_requests)])
                cached = asyncio.run(_sequential(port, cached_calls))
                assert all(status == 200 and cache == "hit" for status, cache, _ in cached), cached[:3]
                cached_q = _quantiles([ms for *_, ms in cached])
                uncached_q = _quantiles([ms for *_, ms in uncached])

                seconds, results = asyncio.run(_concurrent(port, calls([warm[i % len(warm)] for i in range(THROUGHPUT_REQUESTS)]), CONNECTIONS))
                assert all(status == 200 for status, *_ in results)
                cached_rps = round(len(results) / seconds)
                rest = fresh[latency_requests:]
                seconds, results = asyncio.run(_concurrent(port, calls(rest), CONNECTIONS))
                uncached_rps = round(len(results) / seconds)
                conc_q = _quantiles([ms for *_, ms in results])

                rows += [
                    {"name": f"api: {label}, cached, p95 (1 connection)", "figure": cached_q["p95"], "unit": "ms",
                     "target": "< 5 ms", "baseline": sql_q["p95"],
                     "notes": f"p50 {cached_q['p50']}, p99 {cached_q['p99']} ms; baseline: the same SQL direct, "
                              f"p50 {sql_q['p50']}, p99 {sql_q['p99']} ms"},
                    {"name": f"api: {label}, uncached, p95 (1 connection)", "figure": uncached_q["p95"], "unit": "ms",
                     "target": "< 50 ms", "baseline": sql_q["p95"],
                     "notes": f"p50 {uncached_q['p50']}, p99 {uncached_q['p99']} ms (every request a miss)"},
                    {"name": f"api: {label}, cached, throughput ({workers}, {CONNECTIONS} connections)",
                     "figure": cached_rps, "unit": "req/s", "target": ">= 1000 req/s",
                     "notes": f"{THROUGHPUT_REQUESTS} requests"},
                    {"name": f"api: {label}, uncached, throughput ({workers}, {CONNECTIONS} connections)",
                     "figure": uncached_rps, "unit": "req/s",
                     "notes": f"{len(rest)} requests, every one a miss; p95 {conc_q['p95']} ms under that load"},
                ]
        finally:
            api.terminate()
            api.wait(timeout=30)
            if redis_url:
                with redis.Redis.from_url(redis_url) as client:
                    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
                    for i in range(0, len(keys), 1000):
                        client.delete(*keys[i:i + 1000])
    for row in rows:
        row["notes"] += (f"; {tenants} tenants, {revenue_rows:,} revenue rows, {cohort_rows:,} cohort rows, "
                         f"{segment_rows:,} revenue_segments rows")
        row["notes"] += f"; load average {os.getloadavg()[0]:.1f} at the end"
    return rows


if __name__ == "__main__":
    from bench.run_all import BenchContext

    for row in run(BenchContext.from_env()):
        print(row)
