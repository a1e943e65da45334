"""Retention of raw events: `analytics_events` keeps 13 months (rolling deletion). The purge
itself; the Dagster job and sensor that run it are in definitions.py, its SQL in sql/.

The aggregates and the derived state tables are the long-term history and are never purged; only
raw events go, and only those that every declared derived state has already absorbed
(analytics_pipeline/domains.py collects the states the domains declare; analytics_pipeline/aggregation/state.py
keeps their watermarks). Every aggregate is computed from those states, so recomputing any
partition, and any state, gives the same rows after a purge as before it.

- Cutoff: the start of the UTC day `ANALYTICS_RETENTION_MONTHS` calendar months ago
  (policy.retention_cutoff). Events with `timestamp` before it go; one exactly at it stays.
- Absorbed horizon: the oldest xmin of the snapshots of every declared state's last absorb
  (state.absorbed_horizon, docs/ingestion.md#retention): every event inserted by a transaction
  below it is in every state. Only those events are deleted (and those inserted before revision
  0018, which every state read in its first absorb since). A state without a snapshot, or one that
  has not yet absorbed an expired event committed since, makes the cleanup refuse and name the
  asset to materialize.
- Held back: an expired event inserted by a transaction at or above the horizon stays, even
  though every state may hold it (the refusal above covers any a state does not): the horizon is
  the oldest transaction, on any database of the server, still running at some state's last
  absorb. The cleanup deletes the others and reports how many it held back, why, and their ids'
  range; a cleanup after the states' next absorbs deletes it.
- Batches: up to `batch_size` rows of one tenant, oldest first, each in its own short
  transaction, so the platform's inserts never wait long and a stopped run leaves no half-done
  batch. The next run continues where the last one stopped: the rows left are still expired.
- WAL pacing: after each batch the cleanup pauses until the WAL written during the batch, spread
  over the batch and the pause, is at most `max_wal_mb_per_second`. Every commit of the platform
  waits for the WAL written before it to reach the disk; the first batches after a checkpoint
  write a full-page image of every heap page they touch (a tenant's 1,000 oldest events lie on
  hundreds of pages), about 30 times the WAL of the later batches.

Operations (the sensor, the command, the measurements behind the design): docs/operations.md.
"""

import datetime as dt
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import dagster as dg
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ..aggregation import state
from ..core.settings import ConfigError
from ..core.sql import sql_loader
from ..domains import declared_state_names

load = sql_loader(__package__)

BATCH_SIZE = 1_000
TIME_BUDGET_MINUTES = 10.0
# A little above what a batch without full-page images writes on the benchmark's machine (about
# 10 MB/s), a tenth of what a batch of them does (about 190 MB/s); a month of 10M events would
# stay inside the time budget even if every batch were of those: 680 x 3.2 MB at 16 MB/s, 136 s
# (docs/operations.md#retention-of-raw-events).
MAX_WAL_MB_PER_SECOND = 16.0

# The statements in sql/ that look at every tenant start from organizations and look into
# analytics_events one tenant at a time (LATERAL ... LIMIT), so that they walk the specification's
# (tenant_id, "timestamp" DESC) index instead of scanning the table: no index on "timestamp" alone
# is needed (docs/operations.md#retention-of-raw-events has the measurements).

# The {deletable} of those statements: expired, and inserted below the absorbed horizon (NULL: no
# state to wait for), or before revision 0018 (ingest_xid NULL: in every state that has a
# snapshot).
DELETABLE = 'e."timestamp" < :cutoff AND coalesce(e.ingest_xid < CAST(:horizon AS xid8), true)'

HELD_BACK_UNABSORBED = (
    "inserted at or above the states' absorbed horizon, the oldest transaction still running at a "
    "state's last absorb: deleted by a cleanup after the states' next absorbs"
)


def _statement(name: str) -> sa.TextClause:
    """The statement in sql/<name>.sql, with the deletable events' predicate in place."""
    return sa.text(load(name).replace("{deletable}", DELETABLE))


class RetentionRefused(RuntimeError):
    """Deleting would lose events a derived state has not absorbed yet. `assets` are the state
    assets to materialize before the cleanup can go ahead."""

    def __init__(self, message: str, assets: list[str]):
        super().__init__(message)
        self.assets = assets


@dataclass(frozen=True)
class HeldBackEvents:
    """Expired events the cleanup leaves because no derived state holds them yet."""

    rows: int = 0
    reasons: dict[str, int] = field(default_factory=dict)  # reason: rows
    first_id: str | None = None  # the range of their ids, in text order
    last_id: str | None = None

    def describe(self) -> str:
        why = "; ".join(f"{n} {reason}" for reason, n in self.reasons.items())
        return f"held back {self.rows} expired events ({why}), ids {self.first_id} .. {self.last_id}"


@dataclass(frozen=True)
class PurgeReport:
    """What one cleanup did (or, in a dry run, would do)."""

    cutoff: dt.datetime
    absorbed_horizon: int | None  # a transaction id; None: no state to wait for
    dry_run: bool
    rows_by_tenant: dict[str, int] = field(default_factory=dict)  # deleted, or deletable if dry
    batches: int = 0  # committed batches, or in a dry run the batches it would take
    duration_seconds: float = 0.0
    oldest_remaining_timestamp: dt.datetime | None = None
    complete: bool = True  # False: the time budget ran out with deletable events left
    wal_bytes: int = 0  # WAL written during the batches
    paused_seconds: float = 0.0  # pauses after batches to keep to max_wal_mb_per_second
    held_back: HeldBackEvents = field(default_factory=HeldBackEvents)

    @property
    def rows(self) -> int:
        return sum(self.rows_by_tenant.values())

    def metadata(self) -> dict[str, object]:
        rows = "rows_to_delete" if self.dry_run else "rows_deleted"
        oldest = self.oldest_remaining_timestamp
        return {
            "dry_run": self.dry_run,
            "cutoff": self.cutoff.isoformat(),
            "absorbed_horizon": str(self.absorbed_horizon) if self.absorbed_horizon is not None else None,
            rows: self.rows,
            f"{rows}_by_tenant": dg.MetadataValue.json(self.rows_by_tenant),
            "batches": self.batches,
            "duration_seconds": round(self.duration_seconds, 3),
            "oldest_remaining_timestamp": (
                dg.MetadataValue.timestamp(oldest.replace(tzinfo=dt.UTC)) if oldest else None
            ),
            "complete": self.complete,
            "wal_mb": round(self.wal_bytes / 1e6, 1),
            "paused_seconds": round(self.paused_seconds, 3),
            "held_back": self.held_back.rows,
            "held_back_reasons": dg.MetadataValue.json(self.held_back.reasons),
            "held_back_ids": (
                f"{self.held_back.first_id} .. {self.held_back.last_id}" if self.held_back.rows else None
            ),
        }


def expired_events_exist(conn: Connection, cutoff: dt.datetime) -> bool:
    """Whether any event has a `timestamp` before `cutoff`: one index probe per tenant."""
    return bool(conn.execute(_statement("expired_exist"), {"cutoff": cutoff}).scalar())


def states_to_wait_for() -> tuple[str, ...]:
    """The derived states whose absorption bounds what may be deleted: every state the domains
    declare (analytics_pipeline/domains.py), whichever entry point runs the purge."""
    return declared_state_names()


def absorbed_horizon(conn: Connection, cutoff: dt.datetime, states: Iterable[str] | None = None) -> int | None:
    """The transaction id below which every state of `states` (default: every declared state) has
    absorbed every event (None when there is no state). Raises RetentionRefused, naming the
    states' assets, when a state has never absorbed (since revision 0018) or has not absorbed an
    expired event committed since its last absorb."""
    names = list(states_to_wait_for() if states is None else states)
    if not names:
        return None
    snapshots = state.absorbed_snapshots(conn)
    never = sorted(n for n in names if snapshots.get(n) is None)
    now = state.current_snapshot(conn)

    def lags(name: str) -> bool:
        committed = state.Committed((snapshots[name],), now)
        statement = sa.text(committed.render(load("unabsorbed_expired_exist")))
        return bool(conn.execute(statement, {**committed.params, "cutoff": cutoff}).scalar())

    behind = sorted(n for n in names if n not in never and lags(n))
    if never or behind:
        reasons = [f"{n} (never materialized)" for n in never] + [
            f"{n} (expired events committed since its last absorb)" for n in behind
        ]
        raise RetentionRefused(
            f"retention refused: events before {cutoff:%Y-%m-%d} are not yet absorbed by derived "
            f"state; materialize first: {', '.join(reasons)}",
            never + behind,
        )
    return state.absorbed_horizon(conn, names)


def held_back_events(conn: Connection, cutoff: dt.datetime, horizon: int | None) -> HeldBackEvents:
    """The expired events inserted at or after the horizon, which the purge leaves."""
    if horizon is None:
        return HeldBackEvents()
    rows, first_id, last_id = conn.execute(_statement("held_back"), {"cutoff": cutoff, "horizon": str(horizon)}).one()
    return HeldBackEvents(rows, {HELD_BACK_UNABSORBED: rows} if rows else {}, first_id, last_id)


def purge_expired_events(
    engine: Engine,
    cutoff: dt.datetime,
    *,
    dry_run: bool = False,
    batch_size: int = BATCH_SIZE,
    time_budget: dt.timedelta = dt.timedelta(minutes=TIME_BUDGET_MINUTES),
    max_wal_mb_per_second: float | None = MAX_WAL_MB_PER_SECOND,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    on_batch: Callable[[str, int], None] | None = None,
    states: Iterable[str] | None = None,
) -> PurgeReport:
    """Delete the events before `cutoff` that every state of `states` (default: every declared
    state) has absorbed, in batches.

    Stops starting new batches once `time_budget` has passed (the report says `complete=False`);
    after each batch, pauses as long as it takes for the WAL written during the batch to average
    at most `max_wal_mb_per_second` over the batch and the pause (None: no pause).
    `on_batch(tenant_id, rows)` is called after each committed batch. A dry run only counts.
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    if max_wal_mb_per_second is not None and not max_wal_mb_per_second > 0:
        raise ConfigError(f"max_wal_mb_per_second must be > 0, got {max_wal_mb_per_second}")
    started = clock()
    with engine.connect() as conn:
        horizon = absorbed_horizon(conn, cutoff, states)
        params = {"cutoff": cutoff, "horizon": None if horizon is None else str(horizon)}
        held_back = held_back_events(conn, cutoff, horizon)
        if dry_run:
            counts = dict(conn.execute(_statement("deletable_by_tenant"), params).all())
            tenants = []
        else:
            counts = {}
            tenants = conn.execute(_statement("tenants_with_deletable"), params).scalars().all()

    batches = -(-sum(counts.values()) // batch_size) if dry_run else 0
    complete = True
    wal_bytes, paused = 0, 0.0
    for tenant_id in tenants:
        while True:
            if clock() - started >= time_budget.total_seconds():
                complete = False
                break
            batch_started = time.monotonic()
            with engine.begin() as conn:
                wal_at = conn.execute(_statement("wal_position")).scalar()
                rows = conn.execute(
                    _statement("delete_batch"), {**params, "tenant_id": tenant_id, "batch_size": batch_size}
                ).rowcount
                written = conn.execute(_statement("wal_bytes_since"), {"since": wal_at}).scalar()
            batch_seconds = time.monotonic() - batch_started
            wal_bytes += written
            if rows:
                counts[tenant_id] = counts.get(tenant_id, 0) + rows
                batches += 1
                if on_batch:
                    on_batch(tenant_id, rows)
            if max_wal_mb_per_second is not None:
                pause = written / (max_wal_mb_per_second * 1e6) - batch_seconds
                if pause > 0:
                    sleep(pause)
                    paused += pause
            # Fewer rows than asked: this tenant is done (or the rest is locked by another run).
            if rows < batch_size:
                break
        if not complete:
            break

    with engine.connect() as conn:
        oldest = conn.execute(_statement("oldest_remaining")).scalar()
    return PurgeReport(
        cutoff=cutoff,
        absorbed_horizon=horizon,
        dry_run=dry_run,
        rows_by_tenant=counts,
        batches=batches,
        duration_seconds=clock() - started,
        oldest_remaining_timestamp=oldest,
        complete=complete,
        wal_bytes=wal_bytes,
        paused_seconds=paused,
        held_back=held_back,
    )

