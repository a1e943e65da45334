"""Generated event data sets shared by the benchmarks.

A data set is generated once into a database of its own (`bench_events_<label>`) with
`analytics-pipeline seed`'s generator and kept for later runs; each benchmark works on a clone
(`CREATE DATABASE ... TEMPLATE`), so none of them sees another's writes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import Iterator

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from analytics_pipeline.core import db, migrate

from .scratch import server_url

# label -> (tenants, users per tenant); about 120 events per user over 14 months.
SIZES = {"1m": (50, 170), "10m": (50, 1700),
         # Few tenants with many customers each: bench/segments_bench.py's 50 plans per tenant.
         "1m_wide": (6, 1400)}
# Bump when the generator changes, so that stale data sets are not reused. (Each clone is brought
# to the newest schema revision, so a new migration alone needs no new data set.)
VERSION = "v2"
END = dt.date(2026, 11, 1)
START = dt.date(2025, 9, 1)


# The backfill targets (at most 3x one GROUP BY scan over the same events) are stated for the 10M
# set. On smaller sets a backfill's fixed costs (Dagster recording each of ~1,060 day partitions
# and their checks) dominate, so the ratio is reported there without a verdict.
SCAN_RATIO_TARGET_EVENTS = 5_000_000


def scan_ratio_target(events: int) -> dict:
    """The target fields of a backfill row measured on `events` events."""
    if events >= SCAN_RATIO_TARGET_EVENTS:
        return {"target": "<= 3x the GROUP BY scan"}
    return {"target": "none at this size (<= 3x is stated for the 10M set)"}


def _admin() -> psycopg.Connection:
    url = make_url(server_url()).set(drivername="postgresql").render_as_string(hide_password=False)
    return psycopg.connect(url, autocommit=True)


def _url(name: str) -> str:
    return make_url(server_url()).set(database=name).render_as_string(hide_password=False)


def ensure_dataset(label: str) -> str:
    """Name of the template database holding the data set, generating it if missing."""
    from analytics_pipeline.dev.generator import SeedOptions
    from analytics_pipeline.dev.load import load

    name = f"bench_events_{label}_{VERSION}"
    with _admin() as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return name
        building = f"{name}_building"
        conn.execute(f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{building}"')
    url = _url(building)
    migrate.upgrade(url)
    tenants, users = SIZES[label]
    load(url, SeedOptions(tenants=tenants, users_per_tenant=users, start=START, end=END, seed=1,
                          malformed_rate=0.001, late_rate=0.01))
    db.dispose(url)
    with psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False),
                         autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE analytics_events")
    with _admin() as conn:
        conn.execute(f'ALTER DATABASE "{building}" RENAME TO "{name}"')
    return name


@contextlib.contextmanager
def dataset_clone(label: str) -> Iterator[str]:
    """A URL of a fresh copy of the data set, dropped afterwards."""
    template = ensure_dataset(label)
    name = f"bench_run_{label}_{uuid.uuid4().hex[:8]}"
    with _admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    url = _url(name)
    try:
        migrate.upgrade(url)
        yield url
    finally:
        db.dispose(url)
        with _admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def event_count(url: str) -> int:
    with db.engine_for(url).connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM analytics_events")).scalar_one()


def commit_again(url: str, by: dt.timedelta) -> None:
    """Commit the data set's last `by` of events (by created_at) again, as if they had just
    arrived: derived state absorbs in commit order (analytics_pipeline/aggregation/state.py), and
    `ingest_xid` is the inserting transaction's id, here this one's. Absorbing is idempotent,
    so a state's rows stay as they are while the next absorb does the work of reading them."""
    engine = db.engine_for(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE analytics_events SET ingest_xid = pg_current_xact_id() "
                "WHERE created_at > (SELECT max(created_at) FROM analytics_events) - :by"
            ),
            {"by": by},
        )
    # A newly inserted event leaves no dead row version behind; the updated ones do, in the heap
    # and in every index a run reads. Vacuumed away, a run reads what it would after an insert.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM (INDEX_CLEANUP ON) analytics_events"))
