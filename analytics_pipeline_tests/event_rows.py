"""Hand-built analytics_events for aggregate tests, and reading result rows back."""

from __future__ import annotations

import datetime as dt
import itertools
import json

import sqlalchemy as sa

_ids = itertools.count()

def event(event_type: str, timestamp: str, user_id: str | None = None, **data):
    """One event row; `data` is event_data (a string `_raw` replaces it as given). Its created_at
    is the time of insertion, as the platform writes it: derived state follows created_at."""
    raw = data.pop("_raw", None)
    return {
        "id": f"e{next(_ids)}",
        "event_type": event_type,
        "event_data": raw if raw is not None else json.dumps(data),
        "user_id": user_id,
        "timestamp": dt.datetime.fromisoformat(timestamp),
    }


def insert_events(engine, events, tenant_id: str = "t1") -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO organizations (id, name) VALUES (:t, :t) ON CONFLICT DO NOTHING"),
            {"t": tenant_id},
        )
        users = sorted({e["user_id"] for e in events if e["user_id"]})
        for user in users:
            conn.execute(
                sa.text("INSERT INTO users (id, tenant_id) VALUES (:u, :t) ON CONFLICT DO NOTHING"),
                {"u": user, "t": tenant_id},
            )
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


def table_rows(engine, table: str, order_by: str) -> list[dict]:
    """All rows of a table without updated_at, as dicts, in a stable order."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY {order_by}")).mappings().all()
    return [{k: v for k, v in row.items() if k != "updated_at"} for row in rows]


def range_tags(first: str, last: str) -> dict[str, str]:
    """Run tags that make one run cover the partitions first..last (inclusive)."""
    return {
        "dagster/asset_partition_range_start": first,
        "dagster/asset_partition_range_end": last,
    }
