"""Building blocks for tests: hand-built events (one at a time with `add_event`, or as rows with
`event` and `insert_events`), running assets over partition ranges, and reading rows back."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import socket
import threading
import time
from collections.abc import Sequence

import dagster as dg
import pytest
import sqlalchemy as sa

from analytics_pipeline.aggregation import state
from analytics_pipeline.aggregation.partitions import partition_range_tags
from analytics_pipeline.core.resources import pipeline_resources

_ids = itertools.count()


def add_tenant(conn, tenant_id: str, users: Sequence[str] = ()) -> None:
    conn.execute(
        sa.text("INSERT INTO organizations (id, name) VALUES (:t, :n) ON CONFLICT DO NOTHING"),
        {"t": tenant_id, "n": f"Org {tenant_id}"},
    )
    for user in users:
        conn.execute(
            sa.text("INSERT INTO users (id, tenant_id) VALUES (:u, :t) ON CONFLICT DO NOTHING"),
            {"u": user, "t": tenant_id},
        )


def add_event(
    conn,
    tenant_id: str,
    event_type: str,
    at: str | dt.datetime,
    user_id: str | None = None,
    created_at: str | dt.datetime | None = None,
    event_id: str | None = None,
    **data,
) -> str:
    """Insert one event; `data` becomes event_data. Users are created on the fly."""
    if user_id is not None:
        add_tenant(conn, tenant_id, [user_id])
    else:
        add_tenant(conn, tenant_id)
    event_id = event_id or f"ev-{next(_ids)}"
    conn.execute(
        sa.text(
            "INSERT INTO analytics_events (id, tenant_id, event_type, event_data, user_id, timestamp, created_at) "
            "VALUES (:id, :t, :type, CAST(:data AS jsonb), :u, :at, coalesce(CAST(:created AS timestamp), now()))"
        ),
        {
            "id": event_id,
            "t": tenant_id,
            "type": event_type,
            "data": json.dumps(data),
            "u": user_id,
            "at": at,
            "created": created_at,
        },
    )
    return event_id


def event(event_type: str, timestamp: str, user_id: str | None = None, **data) -> dict:
    """One event row for `insert_events`; `data` is event_data (a string `_raw` replaces it as
    given). Its created_at is the time of insertion, as the platform writes it: derived state
    follows created_at."""
    raw = data.pop("_raw", None)
    return {
        "id": f"e{next(_ids)}",
        "event_type": event_type,
        "event_data": raw if raw is not None else json.dumps(data),
        "user_id": user_id,
        "timestamp": dt.datetime.fromisoformat(timestamp),
    }


def insert_events(engine, events: Sequence[dict], tenant_id: str = "t1") -> None:
    """Insert rows made by `event` for one tenant in one transaction, creating tenant and users."""
    with engine.begin() as conn:
        add_tenant(conn, tenant_id, sorted({e["user_id"] for e in events if e["user_id"]}))
        conn.execute(
            sa.text(
                "INSERT INTO analytics_events (id, tenant_id, event_type, event_data, user_id, "
                '"timestamp", created_at) VALUES (:id, :tenant_id, :event_type, '
                "CAST(:event_data AS jsonb), :user_id, :timestamp, now() AT TIME ZONE 'UTC')"
            ),
            [{**e, "tenant_id": tenant_id} for e in events],
        )


def db_now(engine) -> dt.datetime:
    """The database's current time (naive UTC), to bound a created_at window."""
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT clock_timestamp() AT TIME ZONE 'UTC'")).scalar()


def db_snapshot(engine) -> str:
    """The database's current snapshot: the events committed so far (analytics_pipeline/aggregation/state.py)."""
    with engine.connect() as conn:
        return state.current_snapshot(conn)


def committed_since(engine, since: str) -> state.Committed:
    """The events committed after the snapshot `since` and before now."""
    return state.Committed((since,), db_snapshot(engine))


def range_tags(first: str, last: str) -> dict[str, str]:
    """Run tags that make one run cover the partitions first..last (inclusive)."""
    return partition_range_tags(dt.date.fromisoformat(first), dt.date.fromisoformat(last))


def materialize_range(assets, db_url: str, start: str, end: str, run_config=None, **kwargs):
    return dg.materialize(
        assets,
        resources=pipeline_resources(db_url),
        tags=range_tags(start, end),
        run_config=run_config,
        **kwargs,
    )


def materialize_beside_an_open_absorb(engine, absorb, materialize) -> tuple[bool, object]:
    """`absorb(conn)` in a transaction left open while `materialize()` runs in a thread; the absorb
    commits once the run waits for a lock it holds (or the run ends, or 30 s pass). Returns whether
    the run waited, and its result."""
    with engine.connect() as absorbing:
        absorbing.begin()
        absorb(absorbing)
        absorbing_pid = absorbing.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        outcome: list = []
        run_thread = threading.Thread(target=lambda: outcome.append(materialize()))
        run_thread.start()
        deadline = time.monotonic() + 30
        waited = False
        while run_thread.is_alive() and not waited and time.monotonic() < deadline:
            with engine.connect() as watching:  # a new transaction: a new view of pg_stat_activity
                waited = watching.execute(sa.text(
                    "SELECT count(*) > 0 FROM pg_stat_activity WHERE datname = current_database() "
                    "AND :absorbing = ANY (pg_blocking_pids(pid))"), {"absorbing": absorbing_pid}).scalar_one()
            time.sleep(0.05)
        absorbing.commit()
    run_thread.join()
    [result] = outcome
    return waited, result


def rows(conn, sql: str, **params) -> list[dict]:
    return [dict(r) for r in conn.execute(sa.text(sql), params).mappings()]


def table_rows(engine, table: str, order_by: str) -> list[dict]:
    """All rows of a table without updated_at, as dicts, in a stable order."""
    with engine.connect() as conn:
        found = conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY {order_by}")).mappings().all()
    return [{k: v for k, v in row.items() if k != "updated_at"} for row in found]


def set_watermark(engine, state_name: str, absorbed: bool = True) -> None:
    """Record that a derived state has absorbed every event committed so far (its snapshot is
    taken now), or, with `absorbed=False`, that it has never absorbed any."""
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO state_watermarks (state_name, absorbed_snapshot, absorbed_through) "
                "VALUES (:n, CASE WHEN :a THEN pg_current_snapshot() END, "
                "CASE WHEN :a THEN statement_timestamp() AT TIME ZONE 'UTC' END) "
                "ON CONFLICT (state_name) DO UPDATE SET absorbed_snapshot = excluded.absorbed_snapshot, "
                "absorbed_through = excluded.absorbed_through"
            ),
            {"n": state_name, "a": absorbed},
        )


def no_older_transaction_in_flight(engine, timeout: float = 60.0) -> None:
    """Wait until no transaction older than the newest event is still running on the server.

    The absorbed horizon is the oldest transaction still running, on any database of the server,
    when a state last absorbed (state.absorbed_horizon): a transaction of another test (another
    pytest worker's) that began before this test's events and was still running then would keep
    them above the horizon, held back. Once this returns, every snapshot taken later has its xmin
    above them (a snapshot's xmin never goes back)."""
    deadline = time.monotonic() + timeout
    with engine.connect() as conn:
        while True:
            past = conn.execute(sa.text(
                "SELECT pg_snapshot_xmin(pg_current_snapshot()) > "
                "coalesce((SELECT max(ingest_xid) FROM analytics_events), CAST('0' AS xid8))"
            )).scalar_one()
            if past:
                return
            if time.monotonic() > deadline:
                running = conn.execute(sa.text(
                    "SELECT pid, datname, state, xact_start, backend_xid FROM pg_stat_activity "
                    "WHERE backend_xid IS NOT NULL ORDER BY age(backend_xid) DESC")).all()
                pytest.fail(f"a transaction older than the test's events is still running after "
                            f"{timeout:g} s: {running}")
            time.sleep(0.05)


def absorb_everything(engine, *states: str) -> None:
    """`states` absorb every event committed so far: their snapshot is taken now, with no older
    transaction running (no_older_transaction_in_flight)."""
    no_older_transaction_in_flight(engine)
    for name in states:
        set_watermark(engine, name)


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_concurrently(fn, *argument_tuples) -> list:
    """Call fn(*args) for each tuple in a thread of its own, all at once; return what each call
    returned, or the exception it raised, in the order given."""
    outcomes: list = [None] * len(argument_tuples)

    def call(i, args):
        try:
            outcomes[i] = fn(*args)
        except Exception as exc:  # returned, so that the test's assertion shows it
            outcomes[i] = exc

    threads = [threading.Thread(target=call, args=(i, a)) for i, a in enumerate(argument_tuples)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes
