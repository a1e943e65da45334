"""Where the inserter's slow waits come from during the retention purge (`retention_bench --trace`).

Three sources on one clock (time.perf_counter, CLOCK_MONOTONIC: the same in every process):

- each purge batch: start of its DELETE, end of the statement, commit; the WAL position before
  and after it (pg_current_wal_lsn from a side connection), and afterwards, from pg_walinspect,
  the WAL it wrote and how much of that was full-page images;
- a sampler process reading pg_stat_activity every 10 ms: state and wait event of the inserter,
  the purge, the checkpointer, the WAL writer and autovacuum, the WAL position, and
  pg_stat_bgwriter's counters;
- the server log's checkpoint lines (log_checkpoints), when the log is readable.

`report()` prints, for every insert slower than 50 ms, where it fell among the batches and what
the sampler saw meanwhile, then a summary per batch.
"""

import bisect
import datetime as dt
import json
import multiprocessing as mp
import os
import re
import statistics
import time

import psycopg
import sqlalchemy as sa

SLOW_INSERT_S = 0.050
SAMPLE_EVERY_S = 0.010

SAMPLE_SQL = """
SELECT pg_current_wal_lsn() - '0/0',
       (SELECT coalesce(json_agg(json_build_array(
                   coalesce(nullif(application_name, ''), backend_type), state,
                   wait_event_type, wait_event)), '[]')
        FROM pg_stat_activity
        WHERE pid <> pg_backend_pid()
          AND (application_name IN (%(inserter)s, %(purge)s)
               OR backend_type IN ('checkpointer', 'walwriter', 'autovacuum worker',
                                   'background writer'))),
       (SELECT json_build_object('checkpoints', checkpoints_timed + checkpoints_req,
                                 'buffers_checkpoint', buffers_checkpoint,
                                 'buffers_backend', buffers_backend,
                                 'buffers_clean', buffers_clean)
        FROM pg_stat_bgwriter)
"""


def _sample(url: str, apps: dict, every: float, ready, stop, results) -> None:
    samples = []
    with psycopg.connect(url, autocommit=True, application_name="bench-sampler") as conn:
        ready.set()
        next_at = time.perf_counter()
        while not stop.is_set():
            at = time.perf_counter()
            lsn, activity, bgwriter = conn.execute(SAMPLE_SQL, apps).fetchone()
            samples.append((at, int(lsn), activity, bgwriter))
            next_at += every
            time.sleep(max(0.0, next_at - time.perf_counter()))
    results.put(samples)


class Sampler:
    """pg_stat_activity and friends every `every` seconds, in a third process."""

    def __init__(self, url: str, inserter_app: str, purge_app: str, every: float):
        ctx = mp.get_context("spawn")
        self.ready, self.stop, self.results = ctx.Event(), ctx.Event(), ctx.Queue()
        apps = {"inserter": inserter_app, "purge": purge_app}
        self.process = ctx.Process(
            target=_sample, args=(url, apps, every, self.ready, self.stop, self.results)
        )

    def __enter__(self):
        self.process.start()
        if not self.ready.wait(timeout=120):
            raise RuntimeError("the sampler process did not connect")
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.samples = self.results.get(timeout=60)
        self.process.join()


class BatchTrace:
    """Times and WAL positions of each purge batch, from the purge engine's events."""

    def __init__(self, engine, url: str):
        self.side = psycopg.connect(url, autocommit=True, application_name="bench-trace")
        self.batches: list[dict] = []
        self.current: dict | None = None
        self.engine = engine
        sa.event.listen(engine, "before_cursor_execute", self._before)
        sa.event.listen(engine, "after_cursor_execute", self._after)

    def _lsn(self) -> str:
        return self.side.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]

    def _before(self, conn, cursor, statement, parameters, context, executemany):
        if "DELETE FROM analytics_events" in statement:
            self.current = {"lsn_start": self._lsn(), "start": time.perf_counter()}

    def _after(self, conn, cursor, statement, parameters, context, executemany):
        if self.current is not None and "DELETE FROM analytics_events" in statement:
            self.current["executed"] = time.perf_counter()

    def on_batch(self, tenant_id: str, rows: int) -> None:
        """The purge's on_batch: called after the batch's commit."""
        batch = self.current or {}
        batch.update(tenant=tenant_id, rows=rows, committed=time.perf_counter(),
                     lsn_end=self._lsn())
        self.batches.append(batch)
        self.current = None

    def close(self) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self._before)
        sa.event.remove(self.engine, "after_cursor_execute", self._after)
        self.add_wal_stats()
        self.side.close()

    def add_wal_stats(self) -> None:
        """WAL bytes, records and full-page images of each batch (pg_walinspect), while the WAL
        is still there."""
        try:
            self.side.execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
        except psycopg.Error as exc:
            print(f"  (no pg_walinspect: {exc})", flush=True)
            return
        for batch in self.batches:
            try:
                row = self.side.execute(
                    "SELECT pg_wal_lsn_diff(%(e)s, %(s)s), count(*), count(*) FILTER (WHERE fpi_length > 0), "
                    "coalesce(sum(fpi_length), 0) FROM pg_get_wal_records_info(%(s)s, %(e)s)",
                    {"s": batch["lsn_start"], "e": batch["lsn_end"]},
                ).fetchone()
            except psycopg.Error:
                batch["wal_bytes"] = int(self.side.execute(
                    "SELECT pg_wal_lsn_diff(%s, %s)", (batch["lsn_end"], batch["lsn_start"])).fetchone()[0])
                continue
            batch["wal_bytes"], batch["wal_records"], batch["fpi_records"], batch["fpi_bytes"] = (
                int(row[0]), row[1], row[2], int(row[3]))


def log_offset() -> int | None:
    try:
        return os.path.getsize(SERVER_LOG)
    except OSError:
        return None


SERVER_LOG = "/var/log/postgresql/postgresql-15-main.log"
_LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) UTC \[\d+\] LOG:  (checkpoint (?:starting|complete).*)$")


def checkpoint_lines(offset: int | None, wall_minus_perf: float) -> list[tuple[float, str]]:
    """The server log's checkpoint lines since `offset`, on the perf_counter clock."""
    if offset is None:
        return []
    lines = []
    try:
        with open(SERVER_LOG) as log:
            log.seek(offset)
            for line in log:
                m = _LOG_LINE.match(line.rstrip("\n"))
                if m:
                    wall = dt.datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=dt.UTC).timestamp()
                    lines.append((wall - wall_minus_perf, m[2]))
    except OSError:
        return []
    return lines


def _waits(samples, since: float, until: float, who: str) -> str:
    seen: dict[str, int] = {}
    for at, _, activity, _ in samples:
        if since <= at <= until:
            for name, state, wtype, wevent in activity:
                if name == who:
                    key = f"{wtype}:{wevent}" if wtype else (state or "?")
                    seen[key] = seen.get(key, 0) + 1
    return ", ".join(f"{k} x{n}" for k, n in sorted(seen.items(), key=lambda kv: -kv[1])) or "-"


def report(latencies, batches, samples, checkpoints, purge_begun: float, purge_ended: float,
           inserter_app: str, purge_app: str) -> dict:
    """Print the slow inserts against the batches and return the figures as a dict."""
    t0 = purge_begun

    def rel(t: float) -> str:
        return f"{(t - t0) * 1000:+.0f} ms"

    starts = [b["start"] for b in batches]
    slow = [(s, lat) for s, lat in latencies if lat > SLOW_INSERT_S]
    print(f"\n  trace: {len(batches)} batches, {len(samples)} samples, {len(checkpoints)} checkpoint log lines, "
          f"{len(slow)} inserts over {SLOW_INSERT_S * 1000:.0f} ms", flush=True)
    for at, line in checkpoints:
        print(f"    checkpoint {rel(at)}: {line[:150]}")
    found = []
    for started, lat in slow:
        ended = started + lat
        i = bisect.bisect_right(starts, ended) - 1  # last batch that started before the insert ended
        where = "before the first batch"
        if i >= 0:
            b = batches[i]
            if b["start"] <= ended and started <= b["committed"]:
                where = (f"during batch {i} ({b['tenant']}, {b['start'] - t0:+.3f}..{b['committed'] - t0:+.3f} s, "
                         f"{b.get('wal_bytes', 0) / 1e6:.1f} MB WAL, {b.get('fpi_records', '?')} FPI)")
            else:
                where = f"{(started - b['committed']) * 1000:.0f} ms after batch {i} committed"
        if started > purge_ended:
            where = "after the purge"
        ins = _waits(samples, started, ended, inserter_app)
        pur = _waits(samples, started, ended, purge_app)
        ckp = _waits(samples, started, ended, "checkpointer")
        wal = _waits(samples, started, ended, "walwriter")
        print(f"    slow insert at {rel(started)}, {lat * 1000:.0f} ms, {where}\n"
              f"      inserter: {ins}; purge: {pur}; checkpointer: {ckp}; walwriter: {wal}")
        found.append({"at_s": started - t0, "ms": lat * 1000, "where": where, "inserter": ins,
                      "purge": pur, "checkpointer": ckp, "walwriter": wal})

    def dist(values, unit=1.0):
        if not values:
            return "-"
        q = statistics.quantiles(values, n=10) if len(values) > 1 else [values[0]] * 9
        return f"median {statistics.median(values) / unit:.1f}, p90 {q[8] / unit:.1f}, max {max(values) / unit:.1f}"

    durations = [(b["committed"] - b["start"]) * 1000 for b in batches if "start" in b]
    wal = [b["wal_bytes"] for b in batches if "wal_bytes" in b]
    fpi = [b["fpi_records"] for b in batches if "fpi_records" in b]
    gaps = [(batches[i + 1]["start"] - batches[i]["committed"]) * 1000 for i in range(len(batches) - 1)]
    print(f"    batch time ms: {dist(durations)}; WAL MB per batch: {dist(wal, 1e6)}; "
          f"FPI per batch: {dist(fpi)}; gap between batches ms: {dist(gaps)}")
    if batches:
        print(f"    first batch starts {rel(batches[0]['start'])} (horizon check and tenant list before it); "
              f"total WAL {sum(wal) / 1e6:.0f} MB, FPI {sum(fpi)}")
    # The slowest batches, with what the inserter waited for during each.
    for i, b in sorted(enumerate(batches), key=lambda ib: ib[1]["start"] - ib[1]["committed"])[:5]:
        worst = max((lat for s, lat in latencies if b["start"] <= s <= b["committed"]), default=0)
        print(f"    slow batch {i} ({b['tenant']}) at {rel(b['start'])}: {(b['committed'] - b['start']) * 1000:.0f} ms, "
              f"{b.get('wal_bytes', 0) / 1e6:.1f} MB WAL, {b.get('fpi_records', '?')} FPI; longest insert in it "
              f"{worst * 1000:.0f} ms; purge: {_waits(samples, b['start'], b['committed'], purge_app)}")
    return {"slow_inserts": found, "batches": [{k: v for k, v in b.items()} for b in batches],
            "checkpoints": [(at - t0, line) for at, line in checkpoints]}


def dump(path: str, data: dict) -> None:
    with open(path, "w") as out:
        json.dump(data, out, indent=1, default=str)
