"""Building blocks for tests: hand-built events and running assets over partition ranges."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import threading
from collections.abc import Sequence

import dagster as dg
import sqlalchemy as sa

from analytics_pipeline.resources import AnalyticsDatabase
from analytics_pipeline.partitions import partition_range_tags

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


def materialize_range(assets, db_url: str, start: str, end: str, run_config=None, **kwargs):
    return dg.materialize(
        assets,
        resources={"database": AnalyticsDatabase(url=db_url)},
        tags=partition_range_tags(dt.date.fromisoformat(start), dt.date.fromisoformat(end)),
        run_config=run_config,
        **kwargs,
    )


def rows(conn, sql: str, **params) -> list[dict]:
    return [dict(r) for r in conn.execute(sa.text(sql), params).mappings()]


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
