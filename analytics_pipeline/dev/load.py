"""Loading the simulated platform (dev/generator.py) into PostgreSQL: organizations, users and
events in one transaction, the events streamed with COPY; into an empty analytics_events, the way
pg_restore does (its indexes and constraints dropped, the rows copied frozen, all of them re-created
before the commit). For `analytics-pipeline seed` and the demo of `analytics-pipeline dev`, the
tests and the benchmarks (docs/events.md#the-generator)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..core import db
from ..core.settings import ConfigError
from . import generator

log = logging.getLogger(__name__)

# Rows passed to COPY at a time, about 130 kB of text: few enough calls into the driver, and
# memory stays flat.
COPY_BATCH_ROWS = 1_000


@dataclass
class LoadResult(generator.EventCounts):
    organizations: int = 0
    users: int = 0
    events: int = 0
    seconds: float = 0.0
    bulk: bool = False

    def summary(self) -> str:
        how = "bulk, indexes rebuilt" if self.bulk else "incremental"
        return (
            f"loaded {self.organizations} organizations, {self.users:,} users and {self.events:,} events "
            f"({self.malformed:,} malformed, {self.late:,} late) in {self.seconds:.1f} s ({how})"
        )


def _constraints_and_indexes(conn: Connection) -> tuple[list[str], list[str]]:
    """Statements that drop, and statements that re-create, analytics_events' primary key (unless
    another table references it), foreign keys and other indexes, from the catalog."""
    referenced = conn.execute(
        sa.text("SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE confrelid = 'analytics_events'::regclass)")
    ).scalar_one()
    constraints = conn.execute(
        sa.text(
            """
            SELECT contype,
                   format('ALTER TABLE analytics_events DROP CONSTRAINT %I', conname),
                   format('ALTER TABLE analytics_events ADD CONSTRAINT %I %s', conname, pg_get_constraintdef(oid))
            FROM pg_constraint
            WHERE conrelid = 'analytics_events'::regclass AND contype IN ('p', 'f')
            ORDER BY contype DESC, conname
            """
        )
    ).all()
    indexes = conn.execute(
        sa.text(
            """
            SELECT format('DROP INDEX %s', i.indexrelid::regclass), pg_get_indexdef(i.indexrelid)
            FROM pg_index i
            WHERE i.indrelid = 'analytics_events'::regclass
              AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid
                              AND c.conrelid = i.indrelid)
            ORDER BY 1
            """
        )
    ).all()
    kept = [c for c in constraints if not (c.contype == "p" and referenced)]
    drops = [c[1] for c in kept] + [i[0] for i in indexes]
    # Primary key first, then the other indexes, then the foreign keys (validated in one pass each).
    creates = (
        [c[2] for c in kept if c.contype == "p"] + [i[1] for i in indexes] + [c[2] for c in kept if c.contype == "f"]
    )
    return drops, creates


def _existing(conn: Connection, options: generator.SeedOptions) -> list[str]:
    ids = [f"org_{options.seed}_{i:03d}" for i in range(options.tenants)]
    found = conn.execute(sa.text("SELECT id FROM organizations WHERE id = ANY(:ids) ORDER BY id"), {"ids": ids})
    return found.scalars().all()


def load(
    url: str,
    options: generator.SeedOptions,
    progress: Callable[[int], None] | None = None,
    on_phase: Callable[[str], None] | None = None,
    before_commit: Callable[[Connection], None] | None = None,
) -> LoadResult:
    """Generate and insert organizations, users and events in one transaction: interrupted, it
    leaves nothing behind.

    Into an empty analytics_events the load goes the way pg_restore does: the table's primary
    key, indexes and foreign keys are dropped, the rows copied (frozen), and all of them
    re-created (the foreign keys re-validated) before the commit; building an index once is
    several times faster than maintaining it row by row. Other sessions wait on the table's lock meanwhile. Into a
    table that already has events the rows are copied with every index and check in place.
    `progress` is called with the number of users done; `on_phase` with a line on what is next;
    `before_commit` with the connection, to write in the same transaction what must be there
    exactly when the rows are.
    """
    started = time.perf_counter()
    result = LoadResult()
    db.check_migrated(db.engine_for(url))
    with db.engine_for(url).connect() as conn, conn.begin():
        taken = _existing(conn, options)
        if taken:
            raise ConfigError(
                f"organizations {', '.join(taken)} already exist: seed {options.seed} was loaded "
                "into this database before; choose another --seed or an empty database"
            )
        result.bulk = not conn.execute(sa.text("SELECT EXISTS (SELECT 1 FROM analytics_events)")).scalar_one()
        recreate: list[str] = []
        if result.bulk:
            conn.execute(sa.text("LOCK TABLE analytics_events IN ACCESS EXCLUSIVE MODE"))
            result.bulk = not conn.execute(sa.text("SELECT EXISTS (SELECT 1 FROM analytics_events)")).scalar_one()
        if result.bulk:
            drops, recreate = _constraints_and_indexes(conn)
            for statement in drops:
                conn.execute(sa.text(statement))
            # Emptied in this transaction, the table accepts COPY FREEZE: rows are written frozen
            # and all-visible, so the first queries after the load do not rewrite every page to
            # set hint bits, and index-only scans work without waiting for a VACUUM.
            conn.execute(sa.text("TRUNCATE analytics_events"))
        copy_events = generator.EVENTS_COPY + (" WITH (FREEZE)" if result.bulk else "")
        driver = conn.connection.driver_connection
        with driver.cursor() as cursor:
            for index in range(options.tenants):
                tenant = generator.make_tenant(options, index)
                cursor.execute(
                    "INSERT INTO organizations (id, name, created_at) VALUES (%s, %s, %s)",
                    (tenant.id, tenant.name, tenant.created_at),
                )
                with cursor.copy("COPY users (id, tenant_id, email, created_at) FROM STDIN") as copy:
                    for row in generator.user_rows(tenant):
                        copy.write_row(row)
                with cursor.copy(copy_events) as copy:
                    lines: list[str] = []
                    emit, written = generator.event_writer(tenant, options, lines.append, result, copy_text=True)
                    for step in generator.tenant_events(tenant, options, emit):
                        if len(lines) >= COPY_BATCH_ROWS:
                            copy.write("".join(lines))
                            lines.clear()
                        if progress and step == generator.USER_DONE:
                            progress(1)
                    copy.write("".join(lines))
                    result.events += written()
                result.organizations += 1
                result.users += options.users_per_tenant
        if recreate:
            if on_phase:
                on_phase("re-creating the indexes and foreign keys of analytics_events")
            conn.execute(sa.text("SET LOCAL maintenance_work_mem = '512MB'"))
            for statement in recreate:
                began = time.perf_counter()
                conn.execute(sa.text(statement))
                log.info("%.1f s: %s", time.perf_counter() - began, statement)
        if before_commit:
            before_commit(conn)
    with db.engine_for(url).connect() as conn:
        conn.execute(sa.text("ANALYZE organizations, users, analytics_events"))
        conn.commit()
    result.seconds = time.perf_counter() - started
    return result


def load_demo(
    url: str, progress: Callable[[int], None] | None = None, on_phase: Callable[[str], None] | None = None
) -> LoadResult:
    """Load the demo data set (`generator.demo_options`); `analytics-pipeline dev` does so into an empty database."""
    return load(url, generator.demo_options(), progress, on_phase)
