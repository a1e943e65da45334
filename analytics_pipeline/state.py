"""Derived state tables absorb raw events incrementally, by `analytics_events.created_at`.

Each state (for example `subscription_history`) keeps a watermark in `state_watermarks`: every
event created at or before `absorbed_through` is reflected in it. A run re-reads from
`absorbed_through - ABSORB_OVERLAP`, because `created_at` is the inserting transaction's start
time and a long platform transaction can commit an event stamped earlier than a watermark already
taken; absorption is therefore idempotent (re-reading an event changes nothing).

Retention (analytics_pipeline.retention) deletes only events that every declared state
(analytics_pipeline.domains.declared_states) has absorbed:
`created_at < min(absorbed_through) - ABSORB_OVERLAP`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .schema import state_watermarks

ABSORB_OVERLAP = dt.timedelta(hours=1)

# Before any watermark: a state absorbs from here, i.e. every event.
BEGINNING = dt.datetime(1, 1, 1)


@dataclass(frozen=True)
class AbsorbWindow:
    state_name: str
    since: dt.datetime  # BEGINNING before the first absorb
    through: dt.datetime

    @property
    def params(self) -> dict[str, dt.datetime]:
        """The bind parameters :since and :through of an absorb statement."""
        return {"since": self.since, "through": self.through}


def begin_absorb(conn: Connection, state_name: str) -> AbsorbWindow:
    """Lock the state's watermark row for this transaction and return the created_at window to
    read: (since, through]. Concurrent runs of the same state wait here, one after the other."""
    conn.execute(
        sa.text(
            "INSERT INTO state_watermarks (state_name, absorbed_through) VALUES (:n, NULL) "
            "ON CONFLICT (state_name) DO NOTHING"
        ),
        {"n": state_name},
    )
    previous, through = conn.execute(
        sa.text(
            "SELECT absorbed_through, statement_timestamp() AT TIME ZONE 'UTC' "
            "FROM state_watermarks WHERE state_name = :n FOR UPDATE"
        ),
        {"n": state_name},
    ).one()
    since = previous - ABSORB_OVERLAP if previous is not None else BEGINNING
    return AbsorbWindow(state_name, since, through)


def finish_absorb(conn: Connection, window: AbsorbWindow) -> None:
    conn.execute(
        state_watermarks.update()
        .where(state_watermarks.c.state_name == window.state_name)
        .values(absorbed_through=window.through, updated_at=sa.func.now())
    )


def watermarks(conn: Connection) -> dict[str, dt.datetime | None]:
    rows = conn.execute(sa.select(state_watermarks.c.state_name, state_watermarks.c.absorbed_through))
    return dict(rows.all())
