"""Benchmark: purge one month of a 10M-event table while the platform keeps inserting, and the
alternative, monthly range partitions of analytics_events with the expired month dropped.

    python -m bench.retention_bench [--events 10000000] [--batch-size N] [--skip-partitions]
        [--max-wal-mb-per-second MB] [--keep-data] [--trace JSON]
        [--checkpoint-at S] [--disk-load FILE] [--cpu-load N]

`make bench` calls `run(ctx)`: batched deletes only (no partitioned copy), batches of the default
size, 10M events (2M with `ctx.quick`).

Uses a scratch database (bench/scratch.py: on BENCH_DATABASE_URL's server, else DATABASE_URL's,
else the embedded one), filled with set-based SQL (generate_series): events spread evenly over
the calendar month before the bench cutoff up to now, so that exactly one calendar month has
expired. A second process inserts one event per transaction at a steady pace throughout, and
reports its longest wait. Results go to stdout as the rows of bench/README.md's table.

`--keep-data` builds the events once into a database kept for later runs
(`bench_retention_<events>_<expired month>_<DATA_VERSION>`; drop it when done) and purges a clone
of it. `--trace` samples the sessions' wait events every 10 ms during the purge and lines up every
insert slower than 50 ms with the purge's batches (bench/retention_trace.py). `--checkpoint-at`,
`--disk-load` and `--cpu-load` add, during the purge, what other work on the server would: a
checkpoint, writes to the same disk, busy processes.
"""

import argparse
import contextlib
import datetime as dt
import multiprocessing as mp
import os
import platform
import statistics
import threading
import time
import uuid
from collections.abc import Iterator

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from analytics_pipeline.core import db, migrate
from analytics_pipeline.domains import declared_state_names
from analytics_pipeline.retention import (
    BATCH_SIZE,
    MAX_WAL_MB_PER_SECOND,
    TIME_BUDGET_MINUTES,
    absorbed_horizon,
    expired_events_exist,
    purge_expired_events,
    retention_cutoff,
)
from bench import retention_trace
from bench.scratch import scratch_database, server_url

TENANTS = 20
USERS = 20_000
CHUNK = 1_000_000
INSERTS_PER_SECOND = 200
PARTITIONED = "bench_events_partitioned"
INSERTER_APP = "bench-inserter"
PURGE_APP = "bench-purge"
# Bump when build() changes, so that a kept data set (--keep-data) is not reused. A kept data set
# is cloned as it is, not migrated: v2 has revision 0018's ingest_xid and absorbed_snapshot.
DATA_VERSION = "v2"


def plain(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def timed(fn, *args, **kwargs):
    started = time.perf_counter()
    value = fn(*args, **kwargs)
    return value, time.perf_counter() - started


# --- The platform: one event per transaction, paced, latency of each commit ----------------------


def platform_inserts(url: str, table: str, ready, stop, results) -> None:
    latencies = []
    with psycopg.connect(url, autocommit=True, application_name=INSERTER_APP) as conn:
        ready.set()
        n = 0
        next_at = time.perf_counter()
        while not stop.is_set():
            n += 1
            started = time.perf_counter()
            conn.execute(
                f"INSERT INTO {table} (id, tenant_id, event_type, event_data, user_id, \"timestamp\") "
                "VALUES (gen_random_uuid()::text, %s, 'page_view', '{\"page\": \"/\"}', %s, "
                "now() AT TIME ZONE 'UTC')",
                (f"org_{1 + n % TENANTS}", f"usr_{TENANTS + n % TENANTS}"),
            )
            finished = time.perf_counter()
            latencies.append((started, finished - started))
            next_at += 1 / INSERTS_PER_SECOND
            time.sleep(max(0.0, next_at - time.perf_counter()))
    results.put(latencies)


class Inserter:
    """The platform inserting events in a second process, for the duration of a `with` block."""

    def __init__(self, url: str, table: str = "analytics_events"):
        ctx = mp.get_context("spawn")
        self.ready, self.stop, self.results = ctx.Event(), ctx.Event(), ctx.Queue()
        self.process = ctx.Process(
            target=platform_inserts, args=(plain(url), table, self.ready, self.stop, self.results)
        )

    def __enter__(self):
        self.process.start()
        if not self.ready.wait(timeout=120):
            raise RuntimeError("the inserter process did not connect")
        time.sleep(1)  # at pace before the measured operation starts
        return self

    def __exit__(self, *exc):
        time.sleep(1)
        self.stop.set()
        self.latencies = self.results.get(timeout=60)
        self.process.join()

    def summary(self, since: float = 0.0, until: float = float("inf")) -> dict:
        waits = [lat for started, lat in self.latencies if since <= started <= until] or [0.0]
        q = statistics.quantiles(waits, n=100) if len(waits) > 1 else [waits[0]] * 99
        return {"inserts": len(waits), "max_ms": max(waits) * 1000, "p99_ms": q[98] * 1000}


def hold_read_lock(url: str, table: str, seconds: float, holding) -> None:
    """A report query reading the table for `seconds`: holds ACCESS SHARE on it until commit."""
    with psycopg.connect(url) as conn:
        conn.execute(f"SELECT 1 FROM {table} LIMIT 1")
        holding.set()
        time.sleep(seconds)
        conn.commit()


# --- The data set ----------------------------------------------------------------------------------


def build(url: str, events: int, start: dt.datetime, end: dt.datetime) -> dict:
    engine = db.engine_for(url)
    timings = {}
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO organizations (id, name) SELECT 'org_' || t, 'Organization ' || t "
            "FROM generate_series(1, :n) AS t"), {"n": TENANTS})
        conn.execute(sa.text(
            "INSERT INTO users (id, tenant_id) SELECT 'usr_' || u, 'org_' || (1 + u % :t) "
            "FROM generate_series(1, :n) AS u"), {"n": USERS, "t": TENANTS})
        indexes = conn.execute(sa.text(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'analytics_events' "
            "AND indexname <> 'analytics_events_pkey'")).all()
        for name, _ in indexes:
            conn.execute(sa.text(f'DROP INDEX "{name}"'))
        conn.execute(sa.text("ALTER TABLE analytics_events DROP CONSTRAINT analytics_events_pkey"))

    # Events in time order, as the platform writes them; user u belongs to tenant 1 + u % TENANTS.
    # created_at trails timestamp by a few seconds. Foreign keys hold by construction, so their
    # triggers are off while loading (session_replication_role).
    load = sa.text("""
        INSERT INTO analytics_events (id, tenant_id, event_type, event_data, user_id, session_id, "timestamp", created_at)
        SELECT gen_random_uuid()::text,
               'org_' || (1 + u % :tenants),
               (ARRAY['page_view', 'page_view', 'page_view', 'user_login', 'session_started',
                      'payment_completed', 'tournament_created', 'player_registered'])[1 + g % 8],
               CASE WHEN g % 8 = 5 THEN jsonb_build_object('amount', 9.99 + g % 40, 'currency', 'USD')
                    ELSE jsonb_build_object('page', '/p/' || g % 50) END,
               'usr_' || u,
               'ses_' || g / 12,
               ts,
               ts + make_interval(secs => g % 5)
        FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS g,
             LATERAL (SELECT (g * 7919) % :users + 1 AS u,
                             CAST(:start AS timestamp) + (CAST(:end AS timestamp) - CAST(:start AS timestamp)) * ((g - 1)::float8 / :events) AS ts) AS x
    """)
    started = time.perf_counter()
    for first in range(1, events + 1, CHUNK):
        with engine.begin() as conn:
            conn.execute(sa.text("SET LOCAL synchronous_commit = off"))
            conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
            conn.execute(load, {"first": first, "last": min(first + CHUNK - 1, events), "tenants": TENANTS,
                                "users": USERS, "start": start, "end": end, "events": events})
        print(f"  loaded {min(first + CHUNK - 1, events):,} events", flush=True)
    timings["load_s"] = time.perf_counter() - started

    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(sa.text("SET LOCAL maintenance_work_mem = '512MB'"))
        conn.execute(sa.text("ALTER TABLE analytics_events ADD CONSTRAINT analytics_events_pkey PRIMARY KEY (id)"))
        for _, definition in indexes:
            conn.execute(sa.text(definition))
    timings["index_s"] = time.perf_counter() - started
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE analytics_events"))
        # The gigabytes just written are still going to disk, and until they are, the WAL's
        # fsyncs (every commit's) stall behind them: 79 ms for the inserter with no purge running,
        # 144 ms during the purge. The measurements are of the purge, not of the load.
        conn.execute(sa.text("CHECKPOINT"))
    return timings


def build_partitioned(url: str, start: dt.datetime, end: dt.datetime) -> list[str]:
    """The same events in a table range-partitioned by month on "timestamp". Its primary key has
    to include the partition key: (id, "timestamp")."""
    engine = db.engine_for(url)
    months = []
    month = start.replace(day=1)
    while month <= end:
        following = (month + dt.timedelta(days=32)).replace(day=1)
        months.append((month, following))
        month = following
    with engine.begin() as conn:
        conn.execute(sa.text(
            f"CREATE TABLE {PARTITIONED} (LIKE analytics_events INCLUDING DEFAULTS) "
            'PARTITION BY RANGE ("timestamp")'))
        for low, high in months:
            conn.execute(sa.text(
                f"CREATE TABLE {PARTITIONED}_{low:%Y_%m} PARTITION OF {PARTITIONED} "
                f"FOR VALUES FROM ('{low:%Y-%m-%d}') TO ('{high:%Y-%m-%d}')"))
    with engine.begin() as conn:
        conn.execute(sa.text("SET LOCAL synchronous_commit = off"))
        conn.execute(sa.text(f"INSERT INTO {PARTITIONED} SELECT * FROM analytics_events"))
    with engine.begin() as conn:
        conn.execute(sa.text("SET LOCAL maintenance_work_mem = '512MB'"))
        conn.execute(sa.text(f'ALTER TABLE {PARTITIONED} ADD PRIMARY KEY (id, "timestamp")'))
        conn.execute(sa.text(f"CREATE INDEX ON {PARTITIONED} (tenant_id, event_type)"))
        conn.execute(sa.text(f'CREATE INDEX ON {PARTITIONED} (tenant_id, "timestamp" DESC)'))
        conn.execute(sa.text(f'CREATE INDEX ON {PARTITIONED} (user_id, "timestamp" DESC)'))
        conn.execute(sa.text(f"CREATE INDEX ON {PARTITIONED} (ingest_xid)"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text(f"VACUUM ANALYZE {PARTITIONED}"))
    return [f"{PARTITIONED}_{low:%Y_%m}" for low, _ in months]


@contextlib.contextmanager
def events_database(events: int, start: dt.datetime, end: dt.datetime, keep: bool) -> Iterator[tuple]:
    """An engine on a database holding the generated events, and the build's timings (None when a
    kept data set was reused). With `keep`, the data set is built once into a database of its own
    (named by size, expired month and DATA_VERSION) and each run works on a clone of it."""
    if not keep:
        with scratch_database("retention") as engine:
            print(f"building {events:,} events from {start:%Y-%m-%d} to {end:%Y-%m-%d %H:%M}", flush=True)
            timings = build(engine.url.render_as_string(hide_password=False), events, start, end)
            yield engine, timings
        return
    base = make_url(server_url())
    admin = base.set(drivername="postgresql").render_as_string(hide_password=False)
    kept = f"bench_retention_{events}_{start:%Y%m}_{DATA_VERSION}"
    timings = None
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (kept,)).fetchone()
    if not exists:
        building = base.set(database=f"{kept}_building").render_as_string(hide_password=False)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{kept}_building" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{kept}_building"')
        migrate.upgrade(building)
        print(f"building {events:,} events from {start:%Y-%m-%d} to {end:%Y-%m-%d %H:%M} into {kept}", flush=True)
        timings = build(building, events, start, end)
        db.dispose(building)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{kept}_building" RENAME TO "{kept}"')
    else:
        print(f"reusing the events kept in {kept} (DROP DATABASE {kept} to rebuild)", flush=True)
    clone = f"bench_retention_run_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        # FILE_COPY: a copy of the files between two checkpoints, not gigabytes of WAL (WAL_LOG).
        conn.execute(f'CREATE DATABASE "{clone}" TEMPLATE "{kept}" STRATEGY FILE_COPY')
    url = base.set(database=clone).render_as_string(hide_password=False)
    try:
        yield db.engine_for(url), timings
    finally:
        db.dispose(url)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{clone}" WITH (FORCE)')


# --- Measurements ------------------------------------------------------------------------------------


def disk_writer(path: str, stop: threading.Event, written: list) -> None:
    """Other work writing to the same disk: 1 MB writes, fdatasync every 16 MB, at most 2 GB."""
    chunk = os.urandom(1 << 20)
    total = 0
    with open(path, "wb") as out:
        while not stop.is_set():
            if out.tell() >= 2 << 30:
                out.seek(0)
            out.write(chunk)
            total += 1
            if total % 16 == 0:
                out.flush()
                os.fdatasync(out.fileno())
    os.unlink(path)
    written.append(total)


def spin(stop) -> None:
    while not stop.is_set():
        sum(range(10_000))


def checkpoint_after(url: str, seconds: float, raw: dict) -> None:
    """A checkpoint `seconds` into the purge, as a timed one would come sooner or later."""
    with psycopg.connect(url, autocommit=True) as conn:
        time.sleep(seconds)
        started = time.perf_counter()
        conn.execute("CHECKPOINT")
        raw["checkpoint"] = (started, time.perf_counter())


def sensor_tick(url: str, cutoff: dt.datetime) -> float:
    """Slowest of three evaluations of the sensor's check, on a fresh connection each."""
    engine = db.engine_for(url)
    worst = 0.0
    for _ in range(3):
        engine.dispose()
        started = time.perf_counter()
        with engine.connect() as conn:
            expired_events_exist(conn, cutoff)
        worst = max(worst, time.perf_counter() - started)
    return worst


def naive_check(url: str, cutoff: dt.datetime) -> float:
    with db.engine_for(url).connect() as conn:
        _, seconds = timed(conn.execute, sa.text(
            'SELECT EXISTS (SELECT 1 FROM analytics_events WHERE "timestamp" < :c)'), {"c": cutoff})
    return seconds


def wait_for_older_transactions(engine, timeout_s: float = 120.0) -> None:
    """Wait until no transaction older than the newest event is running on the server. The purge
    deletes only events below the states' absorbed horizon, the oldest transaction running (on any
    database of the server) when their snapshot was taken: one older than the events would hold
    them all back."""
    deadline = time.monotonic() + timeout_s
    with engine.connect() as conn:
        while not conn.execute(sa.text(
            "SELECT pg_snapshot_xmin(pg_current_snapshot()) > "
            "coalesce((SELECT max(ingest_xid) FROM analytics_events), CAST('0' AS xid8))"
        )).scalar_one():
            if time.monotonic() > deadline:
                running = conn.execute(sa.text(
                    "SELECT pid, datname, state, xact_start FROM pg_stat_activity "
                    "WHERE backend_xid IS NOT NULL ORDER BY age(backend_xid) DESC")).all()
                raise RuntimeError(f"a transaction older than the events is still running: {running}")
            time.sleep(0.1)


def drop_partition(url: str, partition: str, concurrently: bool) -> float:
    started = time.perf_counter()
    with psycopg.connect(plain(url), autocommit=True) as conn:
        if concurrently:
            conn.execute(f"ALTER TABLE {PARTITIONED} DETACH PARTITION {partition} CONCURRENTLY")
        conn.execute(f"DROP TABLE {partition}")
    return time.perf_counter() - started


def measure(args: argparse.Namespace) -> tuple[tuple, list, dict]:
    """Build the data set and measure; returns the server, the printed rows and the raw figures."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    # A whole calendar month has expired: from `start` to the first of the policy cutoff's month.
    cutoff = retention_cutoff(now).replace(day=1)
    start = (cutoff - dt.timedelta(days=1)).replace(day=1)
    rows = []
    raw: dict = {"events": args.events, "batch_size": args.batch_size}

    def result(name: str, figure: str, target: str = "") -> None:
        rows.append((name, figure, target))
        print(f"  {name}: {figure}", flush=True)

    with events_database(args.events, start, now, args.keep_data) as (engine, timings):
        url = engine.url.render_as_string(hide_password=False)
        with engine.connect() as conn:
            server = conn.execute(sa.text(
                "SELECT current_setting('server_version'), current_setting('shared_buffers')")).one()
        raw["build"] = timings
        if timings:
            result("generate events (generate_series), then build the 5 indexes",
                   f"{timings['load_s']:.0f} s + {timings['index_s']:.0f} s")
        with engine.connect() as conn:
            expired = conn.execute(sa.text('SELECT count(*) FROM analytics_events WHERE "timestamp" < :c'), {"c": cutoff}).scalar()
            size = conn.execute(sa.text("SELECT pg_size_pretty(pg_total_relation_size('analytics_events'))")).scalar()
        print(f"  {expired:,} events before {cutoff:%Y-%m-%d}; table with indexes {size}", flush=True)

        # Every declared state has absorbed every event committed so far (its snapshot is taken
        # now): the purge pays for the horizon check too.
        wait_for_older_transactions(engine)
        with engine.begin() as conn:
            for name in declared_state_names():
                conn.execute(sa.text(
                    "INSERT INTO state_watermarks (state_name, absorbed_snapshot, absorbed_through) "
                    "VALUES (:n, pg_current_snapshot(), statement_timestamp() AT TIME ZONE 'UTC') "
                    "ON CONFLICT (state_name) DO UPDATE SET absorbed_snapshot = EXCLUDED.absorbed_snapshot, "
                    "absorbed_through = EXCLUDED.absorbed_through"), {"n": name})

        if not args.skip_partitions:
            print("partitioned copy", flush=True)
            partitions = build_partitioned(url, start, now)

        raw["tick_expired_s"] = sensor_tick(url, cutoff)
        result("sensor tick, expired events present (slowest of 3)", f"{raw['tick_expired_s'] * 1000:.0f} ms", "< 1 s")
        with engine.connect() as conn:
            _, seconds = timed(absorbed_horizon, conn, cutoff)
        result("refusal check (registered state's horizon)", f"{seconds * 1000:.0f} ms")
        dry = purge_expired_events(engine, cutoff, dry_run=True)
        result("dry run (count per tenant)", f"{dry.rows:,} rows in {dry.duration_seconds:.1f} s")

        with Inserter(url) as inserter:
            time.sleep(10)
        baseline = inserter.summary()
        raw["inserter_alone"] = baseline
        result("inserter alone: longest wait / p99",
               f"{baseline['max_ms']:.0f} ms / {baseline['p99_ms']:.1f} ms ({baseline['inserts']} inserts)")

        print(f"batched purge, batch size {args.batch_size}", flush=True)
        # Its own engine, so that the trace can tell the purge's sessions from the others.
        purge_engine = sa.create_engine(db.sqlalchemy_url(url), connect_args={
            "application_name": PURGE_APP, "options": "-c timezone=UTC"})
        tracing = contextlib.ExitStack()
        with tracing:
            if args.trace:
                sampler = tracing.enter_context(retention_trace.Sampler(
                    plain(url), INSERTER_APP, PURGE_APP, retention_trace.SAMPLE_EVERY_S))
                trace = retention_trace.BatchTrace(purge_engine, plain(url))
                log_at = retention_trace.log_offset()
            with Inserter(url) as inserter:
                begun = time.perf_counter()
                if args.disk_load:
                    stop_writer, written = threading.Event(), []
                    writer = threading.Thread(target=disk_writer, args=(args.disk_load, stop_writer, written))
                    writer.start()
                if args.cpu_load:
                    ctx = mp.get_context("spawn")
                    stop_spinning = ctx.Event()
                    spinners = [ctx.Process(target=spin, args=(stop_spinning,)) for _ in range(args.cpu_load)]
                    for spinner in spinners:
                        spinner.start()
                if args.checkpoint_at is not None:
                    checkpoint = threading.Thread(target=checkpoint_after, args=(plain(url), args.checkpoint_at, raw))
                    checkpoint.start()
                report = purge_expired_events(
                    purge_engine, cutoff, batch_size=args.batch_size, time_budget=dt.timedelta(hours=2),
                    max_wal_mb_per_second=args.max_wal_mb_per_second or None,
                    on_batch=trace.on_batch if args.trace else None,
                )
                ended = time.perf_counter()
                if args.checkpoint_at is not None:
                    checkpoint.join()
                if args.cpu_load:
                    stop_spinning.set()
                    for spinner in spinners:
                        spinner.join()
                if args.disk_load:
                    stop_writer.set()
                    writer.join()
                    print(f"  other work wrote {written[0]:,} MB to {args.disk_load} meanwhile", flush=True)
        purge_engine.dispose()
        if args.checkpoint_at is not None:
            print(f"  CHECKPOINT from {raw['checkpoint'][0] - begun:+.3f} s to {raw['checkpoint'][1] - begun:+.3f} s", flush=True)
        if args.trace:
            trace.close()
            checkpoints = retention_trace.checkpoint_lines(log_at, time.time() - time.perf_counter())
            raw["trace"] = retention_trace.report(
                inserter.latencies, trace.batches, sampler.samples, checkpoints, begun, ended,
                INSERTER_APP, PURGE_APP)
            raw["trace"]["inserts"] = [(s - begun, lat) for s, lat in inserter.latencies]
            retention_trace.dump(args.trace, raw["trace"])
        during = inserter.summary(begun, ended)
        raw["purge"] = report
        raw["inserter_during_purge"] = during
        pacing = (f"WAL paced at {args.max_wal_mb_per_second:g} MB/s" if args.max_wal_mb_per_second
                  else "no WAL pacing")
        result(f"batched purge of one month ({report.rows:,} rows, {report.batches} batches of {args.batch_size}, {pacing})",
               f"{report.rows / report.duration_seconds:,.0f} rows/s ({report.duration_seconds:.1f} s, of which "
               f"{report.paused_seconds:.1f} s paused; {report.wal_bytes / 1e6:.0f} MB of WAL)")
        result("  inserter meanwhile: longest wait / p99",
               f"{during['max_ms']:.0f} ms / {during['p99_ms']:.1f} ms ({during['inserts']} inserts)", "< 200 ms")
        assert report.oldest_remaining_timestamp >= cutoff

        raw["tick_none_s"] = sensor_tick(url, cutoff)
        result("sensor tick, nothing expired (slowest of 3)", f"{raw['tick_none_s'] * 1000:.0f} ms", "< 1 s")
        raw["naive_s"] = naive_check(url, cutoff)
        result('  same check as a plain EXISTS on "timestamp" (sequential scan)', f"{raw['naive_s'] * 1000:.0f} ms")

        def partition_drop(name: str, partition: str, concurrently: bool, reader_seconds: float):
            ctx = mp.get_context("spawn")
            with Inserter(url, PARTITIONED) as inserter:
                reader = None
                if reader_seconds:
                    holding = ctx.Event()
                    reader = ctx.Process(
                        target=hold_read_lock, args=(plain(url), PARTITIONED, reader_seconds, holding)
                    )
                    reader.start()
                    holding.wait(timeout=60)
                begun = time.perf_counter()
                seconds = drop_partition(url, partition, concurrently)
                ended = time.perf_counter()
                if reader:
                    reader.join()
            during = inserter.summary(begun - 0.5, ended + 0.5)
            result(name, f"{seconds * 1000:,.0f} ms; inserter longest wait {during['max_ms']:.0f} ms", "< 200 ms")

        if not args.skip_partitions:
            # partitions[0] is the expired month; the next ones (same size) stand in for later ones.
            partition_drop("partitions: DROP TABLE of the expired month", partitions[0], False, 0)
            partition_drop("partitions: DROP TABLE while a 3 s report query reads the table", partitions[1], False, 3)
            partition_drop("partitions: DETACH ... CONCURRENTLY + DROP, same 3 s reader", partitions[2], True, 3)
    return server, rows, raw


def run(ctx=None) -> list[dict]:
    events = 2_000_000 if ctx is not None and ctx.quick else 10_000_000
    args = argparse.Namespace(events=events, batch_size=BATCH_SIZE, skip_partitions=True, keep_data=False,
                              trace=None, checkpoint_at=None, disk_load=None, cpu_load=None,
                              max_wal_mb_per_second=MAX_WAL_MB_PER_SECOND)
    _, _, raw = measure(args)
    report, during, alone = raw["purge"], raw["inserter_during_purge"], raw["inserter_alone"]
    n = f"{events / 1e6:.0f}M events"
    budget_s = TIME_BUDGET_MINUTES * 60
    rate = report.rows / report.duration_seconds
    return [
        {
            "name": f"retention: batched purge of one expired month, batches of {args.batch_size:,} ({n})",
            "figure": round(rate),
            "unit": "rows/s",
            # The daily cleanup run has one time budget; the month's rows must fit in it.
            "target": f"> {report.rows / budget_s:,.0f} rows/s",
            "notes": f"{report.rows:,} rows in {report.batches:,} batches, {report.duration_seconds:.1f} s "
                     f"(of which {report.paused_seconds:.1f} s of pauses keeping the WAL under "
                     f"{MAX_WAL_MB_PER_SECOND:g} MB/s; {report.wal_bytes / 1e6:.0f} MB of WAL); "
                     f"target: the month within one {TIME_BUDGET_MINUTES:.0f}-minute time budget; a second "
                     f"process inserting {INSERTS_PER_SECOND} events/s throughout; data built in "
                     f"{raw['build']['load_s']:.0f} s + {raw['build']['index_s']:.0f} s of indexes",
        },
        {
            "name": f"retention: inserter's longest wait during the purge ({n})",
            "figure": round(during["max_ms"]),
            "unit": "ms",
            "target": "< 200 ms",
            "baseline": round(alone["max_ms"]),
            "notes": f"p99 {during['p99_ms']:.1f} ms over {during['inserts']:,} inserts, one per transaction; "
                     f"baseline: the inserter alone for 10 s (p99 {alone['p99_ms']:.1f} ms)",
        },
        {
            "name": f"retention: sensor tick, expired events present, slowest of 3 ({n})",
            "figure": round(raw["tick_expired_s"] * 1000),
            "unit": "ms",
            "target": "< 1 s",
        },
        {
            "name": f"retention: sensor tick right after the purge, nothing expired, slowest of 3 ({n})",
            "figure": round(raw["tick_none_s"] * 1000),
            "unit": "ms",
            "target": "< 1 s",
            "baseline": round(raw["naive_s"] * 1000),
            "notes": 'baseline: the same check as a plain EXISTS on "timestamp" (sequential scan)',
        },
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument("--max-wal-mb-per-second", type=float, default=MAX_WAL_MB_PER_SECOND,
                        help="the purge's WAL pacing; 0: none (as before it existed)")
    parser.add_argument("--skip-partitions", action="store_true", help="measure batched deletes only")
    parser.add_argument("--keep-data", action="store_true",
                        help="build the events once into a database kept for later runs, and purge a clone")
    parser.add_argument("--checkpoint-at", type=float, metavar="SECONDS",
                        help="issue a CHECKPOINT this many seconds into the purge")
    parser.add_argument("--disk-load", metavar="FILE",
                        help="during the purge, write to FILE (on the server's disk) as other work would")
    parser.add_argument("--cpu-load", type=int, metavar="N",
                        help="during the purge, N processes busy on the CPU, as other work would be")
    parser.add_argument("--trace", metavar="JSON",
                        help="sample waits every 10 ms during the purge; print the slow inserts "
                             "against the batches, and write the details to JSON")
    args = parser.parse_args()
    server, rows, _ = measure(args)
    _table(args, server, rows)


def _table(args, server, rows) -> None:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), platform.processor())
    machine = f"{cpu}, {os.cpu_count()} cores, PostgreSQL {server[0]} (shared_buffers {server[1]})"
    command = f"python -m bench.retention_bench --events {args.events} --batch-size {args.batch_size}"
    if args.max_wal_mb_per_second != MAX_WAL_MB_PER_SECOND:
        command += f" --max-wal-mb-per-second {args.max_wal_mb_per_second:g}"
    for option in ("keep_data", "cpu_load", "disk_load", "checkpoint_at", "trace"):
        value = getattr(args, option)
        if value not in (None, False):
            command += f" --{option.replace('_', '-')}" + ("" if value is True else f" {value}")
    if args.skip_partitions:
        command += " --skip-partitions"
    print(f"\nmachine: {machine}\n")
    print("| benchmark | figure | target | machine | command |")
    print("|---|---|---|---|---|")
    for name, figure, target in rows:
        print(f"| {name} | {figure} | {target} | {machine} | `{command}` |")


if __name__ == "__main__":
    main()
