"""What commit-order ingestion costs the platform (results: bench/README.md): insert throughput
with `analytics_events.ingest_xid` (the column, its default `pg_current_xact_id()` and the index
`analytics_events_ingest_xid_idx`, migration 0018) against the same table without them, and the
size of that index per million events.

Inserts, on a clone of the 1m data set (bench/datasets.py; its organizations, users and events):
three copies of analytics_events built the same way in the schema `ingest_bench`, each with the
table's columns, defaults, primary key, indexes and foreign keys, and the same prefill of events
(indexes built after the prefill, then VACUUM ANALYZE and CHECKPOINT):

- `with_xid`: the table as it is (revision 0018 and later);
- `without_xid`: the same without the column and its index (the target's baseline);
- `rev_0017`: without the column, with the `created_at` index that 0018 dropped (the platform as it
  was before, for information).

Two workloads, each run in turns (with, without, 0017; without, 0017, with; 0017, with, without;
...), after one uncounted turn of each, so that drift of the shared machine falls on all three
alike; the median of each and the ratios are reported, with the server's CPU time per event (the
backends' user + system time from /proc, when the server is on this machine), which other work on
a shared machine moves far less than wall time:

- the platform's: `--clients` processes, each committing transactions of 1 to 10 events (one
  INSERT per event, random uuid ids like an application's, `created_at` and `ingest_xid` from
  their defaults) for `--seconds` per turn;
- a bulk COPY of `--copy-rows` events in one transaction (the text made before the clock).

Index size, per data set size (`--sizes`, default 1m,10m like the other benchmarks; the 1m and
10m sets are generated once and kept): the index as the data set has it (loaded in one
transaction: one ingest_xid for all events), and the index the platform would have over the same
number of events with one transaction per 1 to 10 events, built from scratch (REINDEX), grown in
commit order (a table created at 0018 or later), and grown after an upgrade (the older rows NULL:
the new keys go in before them, not at the index's right edge). The key values are all an index
entry holds besides the heap pointer, so those three use a table of ingest_xid values alone,
one row per event of the data set. The inserts above also report the index's growth per event
under their concurrent small transactions.

    .venv/bin/python -m bench.ingestion_bench [--sizes 1m,10m] [--rounds 5] [--seconds 15]
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import multiprocessing as mp
import os
import random
import statistics
import time
import uuid
from pathlib import Path

import psycopg

from .datasets import dataset_clone, event_count
from .run_all import setting

SCHEMA = "ingest_bench"
WITH, WITHOUT, REV_0017 = "with_xid", "without_xid", "rev_0017"
VARIANTS = (WITH, WITHOUT, REV_0017)
INSERT_COLUMNS = ("id", "tenant_id", "event_type", "event_data", "user_id", "session_id", "timestamp")
COLUMN_LIST = ", ".join(f'"{c}"' for c in INSERT_COLUMNS)
TARGET_RATIO = 0.9


def _psycopg_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


# --- the three tables --------------------------------------------------------------------------


def _build_table(conn: psycopg.Connection, name: str, *, xid: bool, created_at_index: bool, prefill: int) -> None:
    """A copy of public.analytics_events named `name` in SCHEMA: the columns (without ingest_xid
    unless `xid`), their NOT NULLs and defaults, the first `prefill` events by created_at, then the
    primary key, the indexes (ingest_xid's only with the column) and the foreign keys."""
    columns = conn.execute(
        "SELECT attname, format_type(atttypid, atttypmod), attnotnull, pg_get_expr(d.adbin, d.adrelid) "
        "FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
        "WHERE attrelid = 'public.analytics_events'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
    ).fetchall()
    kept = [c for c in columns if xid or c[0] != "ingest_xid"]
    table = f"{SCHEMA}.{name}"
    column_sql = ", ".join(
        f'"{c}" {t}' + (" NOT NULL" if notnull else "") + (f" DEFAULT {default}" if default else "")
        for c, t, notnull, default in kept
    )
    conn.execute(f"CREATE TABLE {table} ({column_sql})")
    # The prefill keeps the data set's values except ingest_xid, which takes its default (this
    # transaction's id: older than every insert measured after it, as for a table created at 0018).
    names = ", ".join(f'"{c}"' for c, *_ in kept if c != "ingest_xid")
    conn.execute(
        f"INSERT INTO {table} ({names}) SELECT {names} FROM public.analytics_events ORDER BY created_at, id LIMIT %s",
        (prefill,),
    )
    for conname, definition in conn.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = 'public.analytics_events'::regclass AND contype = 'p'"
    ).fetchall():
        conn.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}_{conname}" {definition}')
    for indexname, indexdef in conn.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = 'analytics_events' "
        "AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE conrelid = 'public.analytics_events'::regclass)"
    ).fetchall():
        if "ingest_xid" in indexdef and not xid:
            continue
        conn.execute(
            indexdef.replace(f"INDEX {indexname} ON public.analytics_events", f'INDEX "{name}_{indexname}" ON {table}')
        )
    if created_at_index:
        conn.execute(f'CREATE INDEX "{name}_created_at_idx" ON {table} (created_at)')
    for conname, definition in conn.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = 'public.analytics_events'::regclass AND contype IN ('f', 'c', 'u')"
    ).fetchall():
        conn.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}_{conname}" {definition}')


def build_tables(url: str, prefill: int) -> None:
    with psycopg.connect(_psycopg_url(url), autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        conn.execute(f"CREATE SCHEMA {SCHEMA}")
        conn.execute("SET maintenance_work_mem = '256MB'")
        with conn.transaction():
            _build_table(conn, WITH, xid=True, created_at_index=False, prefill=prefill)
            _build_table(conn, WITHOUT, xid=False, created_at_index=False, prefill=prefill)
            _build_table(conn, REV_0017, xid=False, created_at_index=True, prefill=prefill)
        for name in VARIANTS:
            conn.execute(f"VACUUM ANALYZE {SCHEMA}.{name}")
        # The prefill's pages on disk before the clock (bench/README.md, retention: a WAL fsync
        # otherwise waits for the write-back of the files just written).
        conn.execute("CHECKPOINT")


def sample_events(url: str, count: int) -> list[tuple]:
    """`count` events of the data set (every type, in their proportions) to insert again under new ids."""
    with psycopg.connect(_psycopg_url(url)) as conn:
        return conn.execute(
            "SELECT tenant_id, event_type, CAST(event_data AS text), user_id, session_id, \"timestamp\" "
            "FROM public.analytics_events TABLESAMPLE SYSTEM (5) REPEATABLE (7) LIMIT %s",
            (count,),
        ).fetchall()


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _backend_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) of a server process of this machine so far, None when the
    server is elsewhere. Less sensitive to other work on a shared machine than wall time."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def _index_bytes(url: str, index: str) -> int:
    with psycopg.connect(_psycopg_url(url)) as conn:
        return conn.execute("SELECT pg_relation_size(%s)", (index,)).fetchone()[0]


# --- workload 1: small transactions from several clients ----------------------------------------


def _client(url: str, table: str, events: list[tuple], seed: int, ready, start, deadline_box, results) -> None:
    rng = random.Random(seed)
    statement = (
        f"INSERT INTO {SCHEMA}.{table} ({COLUMN_LIST}) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s)"
    )
    with psycopg.connect(_psycopg_url(url)) as conn:
        backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        conn.commit()
        ready.set()
        start.wait()
        cpu_before = _backend_cpu(backend)
        deadline = deadline_box.value
        transactions = inserted = 0
        latencies = []
        while time.time() < deadline:
            batch = [(str(uuid.uuid4()), *events[rng.randrange(len(events))]) for _ in range(rng.randint(1, 10))]
            began = time.perf_counter()
            with conn.cursor() as cur:
                cur.executemany(statement, batch)
            conn.commit()
            latencies.append(time.perf_counter() - began)
            transactions += 1
            inserted += len(batch)
        cpu_after = _backend_cpu(backend)
    cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    results.put({"transactions": transactions, "events": inserted, "latencies": latencies, "cpu": cpu})


def small_transactions_turn(url: str, table: str, events: list[tuple], clients: int, seconds: float, seed: int) -> dict:
    """Events per second committed by `clients` processes in transactions of 1 to 10 events."""
    ctx = mp.get_context("fork")
    start, results = ctx.Event(), ctx.Queue()
    deadline = ctx.Value("d", 0.0)
    readies = [ctx.Event() for _ in range(clients)]
    processes = [
        ctx.Process(target=_client, args=(url, table, events, seed * 100 + i, readies[i], start, deadline, results))
        for i in range(clients)
    ]
    for p in processes:
        p.start()
    for r in readies:
        if not r.wait(60):
            raise RuntimeError("a client did not connect within 60 s")
    began = time.time()
    deadline.value = began + seconds
    start.set()
    outcomes = [results.get(timeout=seconds + 120) for _ in processes]
    elapsed = time.time() - began
    for p in processes:
        p.join(30)
    latencies = sorted(x for o in outcomes for x in o["latencies"])
    events_done = sum(o["events"] for o in outcomes)
    cpu = None if any(o["cpu"] is None for o in outcomes) else sum(o["cpu"] for o in outcomes)
    return {
        "cpu_us_per_event": None if cpu is None or not events_done else 1e6 * cpu / events_done,
        "events_per_s": events_done / elapsed,
        "events": events_done,
        "transactions": sum(o["transactions"] for o in outcomes),
        "commit_p50_ms": 1000 * latencies[len(latencies) // 2] if latencies else None,
        "commit_p99_ms": 1000 * latencies[int(len(latencies) * 0.99)] if latencies else None,
    }


# --- workload 2: bulk COPY ---------------------------------------------------------------------------


def _copy_text(events: list[tuple], rows: int, seed: int) -> bytes:
    rng = random.Random(seed)
    out = io.StringIO()

    def field(value) -> str:
        if value is None:
            return "\\N"
        text = value.isoformat(sep=" ") if isinstance(value, dt.datetime) else str(value)
        return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")

    for _ in range(rows):
        out.write("\t".join(field(v) for v in (str(uuid.uuid4()), *events[rng.randrange(len(events))])) + "\n")
    return out.getvalue().encode()


def copy_turn(url: str, table: str, text: bytes, rows: int) -> dict:
    with psycopg.connect(_psycopg_url(url)) as conn:
        backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        conn.commit()
        cpu_before = _backend_cpu(backend)
        began = time.perf_counter()
        with conn.cursor() as cur, cur.copy(f"COPY {SCHEMA}.{table} ({COLUMN_LIST}) FROM STDIN") as copy:
            for offset in range(0, len(text), 1 << 20):
                copy.write(text[offset:offset + (1 << 20)])
        conn.commit()
        seconds = time.perf_counter() - began
        cpu_after = _backend_cpu(backend)
    cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return {"events_per_s": rows / seconds, "seconds": seconds,
            "cpu_us_per_event": None if cpu is None else 1e6 * cpu / rows}


def _order(round_number: int) -> tuple[str, ...]:
    """The variants in turns, each round starting with the next one (with, without, 0017; then
    without, 0017, with; ...), so that none is always first after the other workload or a pause."""
    k = round_number % len(VARIANTS)
    return VARIANTS[k:] + VARIANTS[:k]


def _row_count(url: str, table: str) -> int:
    with psycopg.connect(_psycopg_url(url)) as conn:
        return conn.execute(f"SELECT count(*) FROM {SCHEMA}.{table}").fetchone()[0]


def measure_inserts(rounds: int, seconds: float, clients: int, copy_rows: int, prefill: int) -> dict:
    with dataset_clone("1m") as url:
        t = time.perf_counter()
        build_tables(url, prefill)
        setup_seconds = time.perf_counter() - t
        events = sample_events(url, 20_000)
        # One turn of each, not counted: the first turns after the CHECKPOINT read the indexes
        # and the referenced tables into the cache.
        for variant in VARIANTS:
            small_transactions_turn(url, variant, events, clients, min(seconds, 5), seed=99)
            copy_turn(url, variant, _copy_text(events, min(copy_rows, 20_000), seed=99), min(copy_rows, 20_000))
        small: dict[str, list[dict]] = {v: [] for v in VARIANTS}
        index_before = _index_bytes(url, f'{SCHEMA}."{WITH}_analytics_events_ingest_xid_idx"')
        events_before = _row_count(url, WITH)
        load_before = os.getloadavg()[0]
        for r in range(rounds):
            for variant in _order(r):
                small[variant].append(small_transactions_turn(url, variant, events, clients, seconds, seed=r))
                print(f"round {r + 1}: {variant}: small transactions {small[variant][-1]['events_per_s']:,.0f} events/s",
                      flush=True)
        index_after = _index_bytes(url, f'{SCHEMA}."{WITH}_analytics_events_ingest_xid_idx"')
        small_events_with = _row_count(url, WITH) - events_before
        bulk: dict[str, list[dict]] = {v: [] for v in VARIANTS}
        for r in range(rounds):
            for variant in _order(r):
                text = _copy_text(events, copy_rows, seed=1000 * r + VARIANTS.index(variant))
                bulk[variant].append(copy_turn(url, variant, text, copy_rows))
                print(f"round {r + 1}: {variant}: COPY {bulk[variant][-1]['events_per_s']:,.0f} events/s", flush=True)
        load_after = os.getloadavg()[0]
    return {
        "small": small, "bulk": bulk, "setup_seconds": setup_seconds, "load": (load_before, load_after),
        "index_growth_bytes_per_event": (index_after - index_before) / small_events_with if small_events_with else None,
        "small_events_with": small_events_with,
    }


# --- index size ----------------------------------------------------------------------------------------


SIM_TABLE = "ingest_bench_xids"


def _simulated_keys_sql(events: int, first_xid: int = 1_000_000) -> str:
    """One row per event in commit order, one transaction per 1 to 10 events (uniformly, 5.5 on
    average) as in the inserts above: the ingest_xid values the platform's inserts would get."""
    transactions = events // 5 + 10
    return (
        f"SELECT CAST(CAST({first_xid} + t AS text) AS xid8) FROM generate_series(1, {transactions}) AS t "
        "CROSS JOIN LATERAL generate_series(1, 1 + CAST(floor(random() * 10 + 0 * t) AS int)) AS e "
        f"LIMIT {events}"
    )


def measure_index_size(label: str) -> dict:
    """The index as the data set has it, and three indexes over as many events with realistic keys."""
    with dataset_clone(label) as url, psycopg.connect(_psycopg_url(url), autocommit=True) as conn:
        events = event_count(url)
        stored = conn.execute("SELECT pg_relation_size('analytics_events_ingest_xid_idx')").fetchone()[0]
        distinct_stored = conn.execute(
            "SELECT count(DISTINCT ingest_xid), count(*) FILTER (WHERE ingest_xid IS NULL) FROM analytics_events"
        ).fetchone()
        conn.execute("SET maintenance_work_mem = '256MB'")
        conn.execute("SELECT setseed(0.5)")
        out = {"events": events, "stored": stored, "stored_distinct": distinct_stored[0],
               "stored_null": distinct_stored[1]}
        # Grown in commit order: the index exists before the rows arrive, in ascending order.
        conn.execute(f"DROP TABLE IF EXISTS {SIM_TABLE}")
        conn.execute(f"CREATE TABLE {SIM_TABLE} (ingest_xid xid8)")
        conn.execute(f"CREATE INDEX {SIM_TABLE}_idx ON {SIM_TABLE} (ingest_xid)")
        began = time.perf_counter()
        conn.execute(f"INSERT INTO {SIM_TABLE} {_simulated_keys_sql(events)}")
        out["grown_seconds"] = time.perf_counter() - began
        out["grown"] = conn.execute(f"SELECT pg_relation_size('{SIM_TABLE}_idx')").fetchone()[0]
        out["transactions"] = conn.execute(f"SELECT count(DISTINCT ingest_xid) FROM {SIM_TABLE}").fetchone()[0]
        # The same keys, built from scratch (CREATE INDEX / REINDEX).
        conn.execute(f"REINDEX INDEX {SIM_TABLE}_idx")
        out["built"] = conn.execute(f"SELECT pg_relation_size('{SIM_TABLE}_idx')").fetchone()[0]
        # After an upgrade: the data set's events NULL (inserted before 0018), then a million new
        # events in commit order; their keys sort before the NULLs (NULLS LAST).
        new = min(events, 1_000_000)
        conn.execute(f"TRUNCATE {SIM_TABLE}")
        conn.execute(f"DROP INDEX {SIM_TABLE}_idx")
        conn.execute(f"INSERT INTO {SIM_TABLE} SELECT NULL FROM generate_series(1, {events})")
        conn.execute(f"CREATE INDEX {SIM_TABLE}_idx ON {SIM_TABLE} (ingest_xid)")
        before = conn.execute(f"SELECT pg_relation_size('{SIM_TABLE}_idx')").fetchone()[0]
        conn.execute(f"INSERT INTO {SIM_TABLE} {_simulated_keys_sql(new)}")
        out["upgrade_null_part"] = before
        out["upgrade_new_events"] = new
        out["upgrade_growth"] = conn.execute(f"SELECT pg_relation_size('{SIM_TABLE}_idx')").fetchone()[0] - before
        conn.execute(f"DROP TABLE {SIM_TABLE}")
    return out


# --- rows --------------------------------------------------------------------------------------------


def _median(turns: list[dict], key: str = "events_per_s") -> float:
    return statistics.median(t[key] for t in turns)


def _insert_rows(m: dict, clients: int, seconds: float, copy_rows: int) -> list[dict]:
    rows = []
    load = f"load average {m['load'][0]:.1f} before, {m['load'][1]:.1f} after"
    for kind, title, turns in (
        ("small", f"inserts: {clients} clients, 1-10 events per transaction, {seconds:g} s turns", m["small"]),
        ("bulk", f"inserts: bulk COPY of {copy_rows:,} events per transaction", m["bulk"]),
    ):
        with_, without, rev = (_median(turns[v]) for v in VARIANTS)
        each = "; ".join(
            f"{v}: " + ", ".join(f"{t['events_per_s']:,.0f}" for t in turns[v]) for v in VARIANTS
        )
        extra = ""
        if kind == "small":
            extra = (
                f"; commit p50 {_median(turns[WITH], 'commit_p50_ms'):.1f} ms with, "
                f"{_median(turns[WITHOUT], 'commit_p50_ms'):.1f} ms without; p99 "
                f"{_median(turns[WITH], 'commit_p99_ms'):.1f} / {_median(turns[WITHOUT], 'commit_p99_ms'):.1f} ms"
            )
        rows.append({
            "name": f"{title}: with ingest_xid (column, default, index) vs the same table without",
            "figure": round(with_), "unit": "events/s",
            "target": f">= {TARGET_RATIO}x the table without ingest_xid",
            "baseline": round(without), "ratio": round(with_ / without, 3),
            "notes": f"medians of {len(turns[WITH])} turns each, in turns (A B C, B C A, C A B, ...) after one "
                     f"uncounted turn each; each turn {each}; "
                     f"{load}{extra}",
        })
        cpu = {v: [t["cpu_us_per_event"] for t in turns[v] if t.get("cpu_us_per_event") is not None] for v in VARIANTS}
        if all(cpu.values()):
            c_with, c_without, c_rev = (statistics.median(cpu[v]) for v in VARIANTS)
            rows.append({
                "name": f"{title}: server CPU per event with ingest_xid vs without (the backends' user + system time)",
                "figure": round(c_with, 1), "unit": "us/event", "target": "for information",
                "baseline": round(c_without, 1), "ratio": round(c_with / c_without, 3),
                "notes": f"medians; revision 0017: {c_rev:.1f} us/event (with / 0017 {c_with / c_rev:.3f}); each turn "
                         + "; ".join(f"{v}: " + ", ".join(f"{x:.1f}" for x in cpu[v]) for v in VARIANTS),
            })
        rows.append({
            "name": f"{title}: with ingest_xid vs revision 0017 (no column, created_at index)",
            "figure": round(with_), "unit": "events/s", "target": "for information",
            "baseline": round(rev), "ratio": round(with_ / rev, 3),
            "notes": "the platform before migration 0018, which replaced the created_at index by ingest_xid's",
        })
    if m["index_growth_bytes_per_event"] is not None:
        rows.append({
            "name": "analytics_events_ingest_xid_idx: growth under the small transactions above",
            "figure": round(m["index_growth_bytes_per_event"] * 1e6 / 2**20, 1), "unit": "MB per million events",
            "target": "for information",
            "notes": f"{m['small_events_with']:,} events inserted into with_xid by {clients} concurrent clients "
                     "(the index's right edge, keys interleaved as transactions commit)",
        })
    return rows


def _index_rows(label: str, m: dict) -> list[dict]:
    mb = lambda size, events: round(size / events * 1e6 / 2**20, 2)  # noqa: E731
    events = m["events"]
    what = f"{events / 1e6:.1f}M events, data set {label}"
    stored_shape = (
        f"{m['stored_distinct']:,} distinct ingest_xid" + (f", {m['stored_null']:,} NULL" if m["stored_null"] else "")
    )
    return [
        {
            "name": f"analytics_events_ingest_xid_idx per million events ({what}), one transaction per 1-10 "
                    "events, grown in commit order (a table created at 0018)",
            "figure": mb(m["grown"], events), "unit": "MB per million events", "target": "for information",
            "baseline": mb(m["built"], events), "ratio": round(m["grown"] / m["built"], 2),
            "notes": f"baseline: the same {m['transactions']:,} keys built by REINDEX; grown in {m['grown_seconds']:.1f} s; "
                     f"index {m['grown'] / 2**20:.1f} MB grown, {m['built'] / 2**20:.1f} MB built",
        },
        {
            "name": f"analytics_events_ingest_xid_idx per million events ({what}), as the data set has it "
                    "(bulk-loaded in one transaction)",
            "figure": mb(m["stored"], events), "unit": "MB per million events", "target": "for information",
            "notes": f"{stored_shape}: every entry a duplicate, so deduplicated into posting lists; "
                     f"{m['stored'] / 2**20:.1f} MB",
        },
        {
            "name": f"analytics_events_ingest_xid_idx after an upgrade ({what} NULL from before 0018): growth per "
                    "million new events",
            "figure": mb(m["upgrade_growth"], m["upgrade_new_events"]), "unit": "MB per million events",
            "target": "for information", "baseline": mb(m["grown"], events),
            "ratio": round((m["upgrade_growth"] / m["upgrade_new_events"]) / (m["grown"] / events), 2),
            "notes": f"{m['upgrade_new_events']:,} new events' keys sort before the NULLs (NULLS LAST), so pages split "
                     f"in the middle instead of at the right edge; baseline: grown with no NULLs; the NULLs' own "
                     f"part {m['upgrade_null_part'] / 2**20:.1f} MB",
        },
    ]


def run(ctx=None) -> list[dict]:
    quick = bool(setting(ctx, "quick", False))
    sizes = setting(ctx, "sizes", None) or os.environ.get("BENCH_SIZES", "1m" if quick else "1m,10m").split(",")
    rounds = int(setting(ctx, "rounds", 3 if quick else 5))
    seconds = float(setting(ctx, "seconds", 5 if quick else 15))
    clients = int(setting(ctx, "clients", 4))
    copy_rows = int(setting(ctx, "copy_rows", 20_000 if quick else 100_000))
    prefill = int(setting(ctx, "prefill", 200_000 if quick else 1_000_000))
    rows: list[dict] = []
    if not setting(ctx, "skip_inserts", False):
        rows += _insert_rows(measure_inserts(rounds, seconds, clients, copy_rows, prefill), clients, seconds, copy_rows)
    if not setting(ctx, "skip_index", False):
        for label in sizes:
            rows += _index_rows(label, measure_index_size(label))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", help="data set labels for the index size (default 1m,10m; --quick 1m)")
    parser.add_argument("--rounds", type=int, help="turns of each variant per workload (default 5; --quick 3)")
    parser.add_argument("--seconds", type=float, help="length of a small-transaction turn (default 15; --quick 5)")
    parser.add_argument("--clients", type=int, help="client processes of the small transactions (default 4)")
    parser.add_argument("--copy-rows", type=int, help="events per COPY turn (default 100,000; --quick 20,000)")
    parser.add_argument("--prefill", type=int, help="events in each table before the turns (default 1,000,000)")
    parser.add_argument("--skip-inserts", action="store_true")
    parser.add_argument("--skip-index", action="store_true")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    settings = {k: v for k, v in vars(args).items() if v is not None}
    if args.sizes:
        settings["sizes"] = args.sizes.split(",")
    rows = run(settings)
    print(json.dumps(rows, indent=1, default=str))


if __name__ == "__main__":
    main()
