"""Derived state tables absorb raw events incrementally, in commit order (docs/ingestion.md).

`analytics_events.ingest_xid` holds the id of the transaction that inserted the event, filled by
the database. Each state (for example `subscription_history`) keeps in `state_watermarks` the
snapshot its last absorb read under (`absorbed_snapshot`): every event whose transaction is
visible in that snapshot is in the state. An absorb takes a new snapshot and reads exactly the
events visible in it and not in the last one (`Committed`), so every committed event is read once,
whatever its `created_at` or `timestamp`, and a transaction still in flight at one absorb is read
by the next. Events inserted before revision 0018 have no ingest_xid; a state without a snapshot
(never absorbed since) reads them all, once.

The same `Committed` ranges tell the freshness sensor which partitions new commits touch
(analytics_pipeline/aggregation/new_events.py), and retention deletes only events every declared state has
absorbed (`absorbed_horizon`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

CURRENT_SNAPSHOT_SQL = sa.text("SELECT CAST(pg_current_snapshot() AS text)")


def current_snapshot(conn: Connection) -> str:
    """The snapshot of this statement, as text: the transactions it sees as committed."""
    return conn.execute(CURRENT_SNAPSHOT_SQL).scalar_one()


def snapshot_xmin(snapshot: str) -> int:
    """The snapshot's xmin: every transaction id below it is visible in it (committed) or gone."""
    return int(snapshot.split(":", 1)[0])


@dataclass(frozen=True)
class Committed:
    """The events committed after each of the snapshots `since` (None: from the beginning, the
    events inserted before revision 0018 included) and visible in `through`: the union over
    `since`. `sql(alias)` is the predicate on analytics_events rows, `params` its bind parameters,
    each named with `prefix` (for two ranges in one statement)."""

    since: tuple[str | None, ...]
    through: str
    prefix: str = ""

    def sql(self, alias: str = "e") -> str:
        xid, p = f"{alias}.ingest_xid", self.prefix
        visible_now = f"pg_visible_in_snapshot({xid}, CAST(:{p}through AS pg_snapshot))"
        if any(s is None for s in self.since):
            return f"({xid} IS NULL OR {visible_now})"
        # Below the oldest xmin every transaction was visible in every `since`: the index range.
        unseen = " OR ".join(
            f"NOT pg_visible_in_snapshot({xid}, CAST(:{p}since_{i} AS pg_snapshot))" for i in range(len(self.since))
        )
        return f"({xid} >= CAST(:{p}since_xmin AS xid8) AND ({unseen}) AND {visible_now})"

    def render(self, statement: str, alias: str = "e", placeholder: str = "committed") -> str:
        """`statement` (a domain's SQL file) with its `{placeholder}` replaced by `sql`."""
        return statement.replace("{" + placeholder + "}", self.sql(alias))

    @property
    def params(self) -> dict[str, object]:
        p = self.prefix
        params: dict[str, object] = {f"{p}through": self.through}
        if all(s is not None for s in self.since):
            params[f"{p}since_xmin"] = str(min(snapshot_xmin(s) for s in self.since))
            params.update({f"{p}since_{i}": s for i, s in enumerate(self.since)})
        return params


@dataclass(frozen=True)
class AbsorbWindow:
    """One state's absorb: the events committed after its last snapshot `since` and visible in
    `through`."""

    state_name: str
    since: str | None  # None before the first absorb (since revision 0018)
    through: str

    @property
    def committed(self) -> Committed:
        return Committed((self.since,), self.through)

    def unseen_sql(self, column: str = "ingest_xid") -> str:
        """Predicate on a row read for several states at once (`read`): not yet in this state.
        Bind parameter :state_since (`unseen_params`). A row inserted before revision 0018 (NULL) is
        in every state that has a snapshot: its first absorb read them all."""
        if self.since is None:
            return "TRUE"
        return f"NOT pg_visible_in_snapshot({column}, CAST(:state_since AS pg_snapshot))"

    def render(self, statement: str) -> str:
        """`statement` with its placeholder {unseen} replaced by `unseen_sql`."""
        return statement.replace("{unseen}", self.unseen_sql())

    @property
    def unseen_params(self) -> dict[str, object]:
        return {} if self.since is None else {"state_since": self.since}


def read(windows: Iterable[AbsorbWindow]) -> Committed:
    """One read for several states absorbed together: what any of them has not seen."""
    windows = list(windows)
    through = {w.through for w in windows}
    assert len(through) == 1, "states read together share one snapshot"
    return Committed(tuple(w.since for w in windows), through.pop())


# A stored snapshot, or NULL when it is not one of this cluster's transaction history: after a
# logical restore (pg_dump, logical replication) into a cluster whose transaction ids are lower,
# a snapshot taken before would see the new events as old. Such a state reads every event again,
# once (every absorb is idempotent), and retention waits for that (docs/ingestion.md#restores).
_STORED_SNAPSHOT = (
    "CAST(CASE WHEN pg_snapshot_xmax(absorbed_snapshot) <= pg_snapshot_xmax(pg_current_snapshot()) "
    "THEN absorbed_snapshot END AS text)"
)


def _lock(conn: Connection, state_name: str) -> str | None:
    conn.execute(
        sa.text("INSERT INTO state_watermarks (state_name) VALUES (:n) ON CONFLICT (state_name) DO NOTHING"),
        {"n": state_name},
    )
    return conn.execute(
        sa.text(f"SELECT {_STORED_SNAPSHOT} FROM state_watermarks WHERE state_name = :n FOR UPDATE"),
        {"n": state_name},
    ).scalar_one()


def begin_absorbs(conn: Connection, *state_names: str) -> list[AbsorbWindow]:
    """Lock the states' watermark rows for this transaction (concurrent absorbs of a state wait
    here, one after the other; in name order, so two absorbs of overlapping sets cannot deadlock),
    then take one snapshot for all of them: the events each is to read are those committed since
    its own last snapshot and visible in this one."""
    since = {name: _lock(conn, name) for name in sorted(state_names)}
    # Taken after the locks: a concurrent absorb that held one has committed, and its snapshot
    # (now our `since`) is older than this one.
    through = current_snapshot(conn)
    return [AbsorbWindow(name, since[name], through) for name in state_names]


def hold(conn: Connection, *state_names: str) -> None:
    """Keep the states a run reads (without absorbing them) as they are until it commits: an
    absorb in flight commits first, and none starts meanwhile. One state at a time in name order,
    the absorbs' order (begin_absorbs), so that neither waits for the other's second lock while
    holding its first."""
    for name in sorted(state_names):
        conn.execute(sa.text("SELECT 1 FROM state_watermarks WHERE state_name = :n FOR SHARE"), {"n": name})


def begin_absorb(conn: Connection, state_name: str) -> AbsorbWindow:
    return begin_absorbs(conn, state_name)[0]


def finish_absorb(conn: Connection, window: AbsorbWindow) -> None:
    conn.execute(
        sa.text(
            "UPDATE state_watermarks SET absorbed_snapshot = CAST(:through AS pg_snapshot), "
            "absorbed_through = statement_timestamp() AT TIME ZONE 'UTC', updated_at = now() AT TIME ZONE 'UTC' "
            "WHERE state_name = :n"
        ),
        {"n": window.state_name, "through": window.through},
    )


def absorbed_snapshots(conn: Connection) -> dict[str, str | None]:
    """Every state's last snapshot (None: not absorbed since revision 0018, or not on this
    cluster's transaction history)."""
    rows = conn.execute(sa.text(f"SELECT state_name, {_STORED_SNAPSHOT} FROM state_watermarks"))
    return dict(rows.all())


def unabsorbed(conn: Connection, state_name: str, through: str, prefix: str = "unabsorbed_") -> Committed:
    """The events visible in `through` that the state has not absorbed yet."""
    return Committed((absorbed_snapshots(conn).get(state_name),), through, prefix)


def absorbed_horizon(conn: Connection, state_names: Iterable[str]) -> int | None:
    """The transaction id below which every event is in every state of `state_names`: the oldest
    xmin of their snapshots (docs/ingestion.md#retention). None while one of them has no snapshot
    (it has not read the events inserted before revision 0018 yet, nor any other)."""
    snapshots = absorbed_snapshots(conn)
    names = list(state_names)
    if any(snapshots.get(name) is None for name in names):
        return None
    return min((snapshot_xmin(snapshots[name]) for name in names), default=None)
