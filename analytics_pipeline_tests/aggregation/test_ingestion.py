"""Ingestion by commit order (analytics_pipeline/aggregation/state.py, docs/ingestion.md): every committed event
is absorbed by every derived state exactly once, whatever its created_at or timestamp, including
events of transactions in flight during an absorb, concurrent absorbs, and a database upgraded
from created_at watermarks."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

import dagster as dg
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics_pipeline.cohorts.assets import absorb_user_activity_months, absorb_user_signups
from analytics_pipeline.core import migrate
from analytics_pipeline.core.resources import pipeline_resources
from analytics_pipeline.revenue.assets import (
    PAYMENT_HISTORY,
    SUBSCRIPTION_HISTORY,
    absorb_histories,
    payment_history,
    revenue_aggregates,
    subscription_history,
)
from analytics_pipeline.tournaments.assets import absorb_tournament_history

from ..helpers import add_event, add_tenant, materialize_range, run_concurrently

TENANTS = {"t1": ["u1", "u2"], "t2": ["u3"]}

# Every table of derived state, with the columns that identify a row. Bookkeeping times
# (updated_at) are left out of the comparison: they say when, not what.
STATE_TABLES = {
    "subscription_events": "event_id",
    "payment_events": "event_id",
    "customer_mrr_days": "tenant_id, user_id, day",
    "tenant_mrr_days": "tenant_id, day",
    "tournament_history": "tenant_id, tournament_id",
    "user_signups": "tenant_id, user_id",
    "user_activity_months": "tenant_id, user_id, activity_month",
    "malformed_events": "event_id",
}


def absorb_all(conn) -> dict[str, int]:
    """Every state's absorb, as the runs call them."""
    revenue = absorb_histories(conn, SUBSCRIPTION_HISTORY, PAYMENT_HISTORY)
    return {
        **revenue,
        "tournament_history": absorb_tournament_history(conn)["events_read"],
        "user_signups": absorb_user_signups(conn),
        "user_activity_months": absorb_user_activity_months(conn),
    }


def read_states(conn) -> dict[str, list]:
    return {
        table: conn.execute(sa.text(f"SELECT to_jsonb(t) - 'updated_at' FROM {table} AS t ORDER BY {key}")).scalars().all()
        for table, key in STATE_TABLES.items()
    }


def rebuilt_states(engine) -> dict[str, list]:
    """The states as a from-scratch absorb of every committed event builds them (rolled back)."""
    with engine.connect() as conn:
        transaction = conn.begin()
        for table in STATE_TABLES:
            conn.execute(sa.text(f"DELETE FROM {table}"))
        conn.execute(sa.text("DELETE FROM state_watermarks"))
        absorb_all(conn)
        states = read_states(conn)
        transaction.rollback()
    return states


def incremental_states(engine) -> dict[str, list]:
    with engine.begin() as conn:
        absorb_all(conn)
    with engine.connect() as conn:
        return read_states(conn)


def payment(conn, event_id, at, tenant="t1", user="u1", amount=10, created_at=None):
    add_event(conn, tenant, "payment_completed", at, user, created_at=created_at, event_id=event_id,
              payment_id=event_id, amount=amount)


def payment_ids(engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(sa.text("SELECT event_id FROM payment_events")).scalars())


@pytest.fixture
def tenants(engine):
    with engine.begin() as conn:
        for tenant, users in TENANTS.items():
            add_tenant(conn, tenant, users)
    return engine


def test_an_event_inserted_between_two_absorbs_is_absorbed_once(tenants):
    engine = tenants
    with engine.begin() as conn:
        payment(conn, "p1", "2025-03-01 10:00")
    with engine.begin() as conn:
        assert absorb_all(conn)["payment_history"] == 1
    with engine.begin() as conn:
        # Backdated, as an import of old history is: created_at and timestamp a year back.
        payment(conn, "p2", "2024-03-01 10:00", created_at=dt.datetime(2024, 3, 1, 10))
    with engine.begin() as conn:
        assert absorb_all(conn)["payment_history"] == 1
    with engine.begin() as conn:
        assert absorb_all(conn)["payment_history"] == 0
    assert payment_ids(engine) == {"p1", "p2"}


def test_a_transaction_that_commits_after_an_absorb_is_read_by_the_next(tenants):
    engine = tenants
    with engine.connect() as platform:
        platform.begin()
        payment(platform, "slow", "2025-03-01 10:00", created_at=dt.datetime(2025, 3, 1, 8))
        with engine.begin() as conn:
            payment(conn, "fast", "2025-03-01 11:00")
        with engine.begin() as conn:
            assert absorb_all(conn)["payment_history"] == 1
        assert payment_ids(engine) == {"fast"}
        platform.commit()
    with engine.begin() as conn:
        assert absorb_all(conn)["payment_history"] == 1
    assert payment_ids(engine) == {"fast", "slow"}


def test_a_rolled_back_event_is_never_absorbed(tenants):
    engine = tenants
    with engine.connect() as platform:
        platform.begin()
        payment(platform, "gone", "2025-03-01 10:00")
        with engine.begin() as conn:
            absorb_all(conn)
        platform.rollback()
    with engine.begin() as conn:
        payment(conn, "kept", "2025-03-01 10:00")
    with engine.begin() as conn:
        absorb_all(conn)
    assert payment_ids(engine) == {"kept"}


def test_concurrent_absorbs_absorb_each_event_once(tenants):
    engine = tenants
    with engine.begin() as conn:
        for n in range(50):
            payment(conn, f"p{n}", f"2025-03-01 10:{n:02d}")

    def absorb_once():
        with engine.begin() as conn:
            return absorb_all(conn)["payment_history"]

    outcomes = run_concurrently(absorb_once, (), (), ())
    assert sorted(outcomes) == [0, 0, 50], outcomes
    assert len(payment_ids(engine)) == 50
    assert incremental_states(engine) == rebuilt_states(engine)


def test_upgrade_from_created_at_watermarks_loses_nothing_and_absorbs_nothing_twice(db_url, tenants):
    """A database at revision 0017 whose states absorbed by created_at: an event the created_at
    watermark missed (committed with an old stamp after the absorb) is absorbed after the upgrade,
    and the events already absorbed are not counted again."""
    engine = tenants
    with engine.begin() as conn:
        payment(conn, "before", "2025-03-01 10:00", amount=5)
        add_event(conn, "t1", "subscription_started", "2025-03-01 09:00", "u1", event_id="sub",
                  subscription_id="s", plan_id="pro", amount=30, interval="month")
    resources = pipeline_resources(db_url)
    assert dg.materialize([subscription_history, payment_history], resources=resources).success
    migrate.downgrade(db_url, "0017_faster_event_contract")
    with engine.connect() as conn:
        absorbed_through = conn.execute(sa.text("SELECT min(absorbed_through) FROM state_watermarks")).scalar_one()
    assert absorbed_through is not None
    with engine.begin() as conn:
        # Stamped two hours before the watermark: the created_at absorb never read it.
        payment(conn, "missed", "2025-03-01 11:00", amount=7, created_at=absorbed_through - dt.timedelta(hours=2))

    migrate.upgrade(db_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM analytics_events WHERE ingest_xid IS NULL")).scalar_one() == 3
    with engine.begin() as conn:
        # The first absorb after the upgrade reads every event; only the missed one is new.
        added = absorb_all(conn)
    assert added["payment_history"] == 1 and added["subscription_history"] == 0
    assert payment_ids(engine) == {"before", "missed"}
    assert incremental_states(engine) == rebuilt_states(engine)

    result = materialize_range([subscription_history, revenue_aggregates], db_url, "2025-03-01", "2025-03-01",
                               selection=["revenue_aggregates"])
    assert result.success
    with engine.connect() as conn:
        day = conn.execute(sa.text(
            "SELECT mrr, total_revenue, payment_count FROM revenue_aggregates "
            "WHERE tenant_id = 't1' AND period_type = 'day' AND period_start = '2025-03-01'"
        )).one()
    assert tuple(day) == (30, 12, 2)


# --- fuzz: random interleavings of inserts, commits, rollbacks and absorbs -------------------

EVENT_TYPES = ["payment_completed", "payment_refunded", "subscription_started", "subscription_cancelled",
               "tournament_created", "player_registered", "user_signup", "page_view"]
USERS = [(tenant, user) for tenant, users in TENANTS.items() for user in users]

amounts = st.one_of(
    st.decimals(min_value=0, max_value=Decimal("99999999999.99"), places=2, allow_nan=False, allow_infinity=False),
    st.just("lots"),  # malformed: not a number
)
events = st.fixed_dictionaries({
    "event_type": st.sampled_from(EVENT_TYPES),
    "who": st.sampled_from(USERS),
    # From before the platform's first day to past the partitions' last.
    "timestamp": st.datetimes(min_value=dt.datetime(2019, 12, 31), max_value=dt.datetime(2027, 1, 1)),
    # None: the database's default; else backdated imports and clocks far ahead.
    "created_at": st.one_of(st.none(), st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2100, 1, 1))),
    "amount": amounts,
    "key": st.sampled_from(["a", "b"]),  # subscription, tournament: a few, so events meet
})
CONNECTIONS = 3
operations = st.lists(
    st.one_of(
        st.tuples(st.just("insert"), st.integers(0, CONNECTIONS - 1), events),
        st.tuples(st.just("commit"), st.integers(0, CONNECTIONS - 1)),
        st.tuples(st.just("rollback"), st.integers(0, CONNECTIONS - 1)),
        st.tuples(st.just("absorb")),
    ),
    min_size=1,
    max_size=25,
)


def _insert(conn, event_id: str, event: dict) -> None:
    tenant, user = event["who"]
    kind = event["event_type"]
    data: dict = {}
    if kind.startswith("payment"):
        data = {"payment_id": event_id, "amount": str(event["amount"])}
    elif kind.startswith("subscription"):
        data = {"subscription_id": event["key"], "plan_id": "pro", "amount": str(event["amount"]), "interval": "month"}
    elif kind.startswith(("tournament", "player")):
        data = {"tournament_id": event["key"], "format": "swiss"}
    add_event(conn, tenant, kind, event["timestamp"], user, created_at=event["created_at"], event_id=event_id, **data)


_ids = itertools.count()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=operations)
def test_after_any_interleaving_the_incremental_state_equals_a_rebuild(tenants, steps):
    engine = tenants
    with engine.begin() as conn:
        for table in (*STATE_TABLES, "state_watermarks", "analytics_events"):
            conn.execute(sa.text(f"DELETE FROM {table}"))
    connections = [engine.connect() for _ in range(CONNECTIONS)]
    pending: list[list[str]] = [[] for _ in range(CONNECTIONS)]
    committed: set[str] = set()
    try:
        for step in steps:
            if step[0] == "insert":
                _, n, event = step
                event_id = f"e{next(_ids)}"
                _insert(connections[n], event_id, event)
                pending[n].append(event_id)
            elif step[0] in ("commit", "rollback"):
                n = step[1]
                getattr(connections[n], step[0])()
                if step[0] == "commit":
                    committed.update(pending[n])
                pending[n] = []
            else:
                assert incremental_states(engine) == rebuilt_states(engine)
        for n, conn in enumerate(connections):
            conn.commit()
            committed.update(pending[n])
    finally:
        for conn in connections:
            conn.close()

    final = incremental_states(engine)
    assert final == rebuilt_states(engine)
    with engine.connect() as conn:
        # Every committed event is in the state once: a valid one where its type goes, a
        # malformed one among the malformed; nothing uncommitted is anywhere.
        counted = conn.execute(sa.text(
            "SELECT e.id, (SELECT count(*) FROM malformed_events m WHERE m.event_id = e.id) "
            "     + (SELECT count(*) FROM payment_events p WHERE p.event_id = e.id) "
            "     + (SELECT count(*) FROM subscription_events s WHERE s.event_id = e.id) "
            "FROM analytics_events e WHERE e.event_type LIKE 'payment%' OR e.event_type LIKE 'subscription%'"
        )).all()
        everywhere = conn.execute(sa.text(
            "SELECT event_id FROM malformed_events UNION ALL SELECT event_id FROM payment_events "
            "UNION ALL SELECT event_id FROM subscription_events"
        )).scalars().all()
    assert all(n == 1 for _, n in counted), counted
    assert set(everywhere) <= committed


def test_a_snapshot_from_another_transaction_history_reads_every_event_again(tenants):
    """After a logical restore into a cluster whose transaction ids are lower, the stored snapshot
    is ahead of every new transaction: the state reads every event again instead of none."""
    engine = tenants
    with engine.begin() as conn:
        payment(conn, "p1", "2025-03-01 10:00")
    with engine.begin() as conn:
        absorb_all(conn)
        # As restored: a snapshot far ahead of this cluster's transaction ids.
        conn.execute(sa.text("UPDATE state_watermarks SET absorbed_snapshot = '9000000000:9000000000:'"))
    with engine.begin() as conn:
        payment(conn, "p2", "2025-03-01 11:00")
    with engine.begin() as conn:
        assert absorb_all(conn)["payment_history"] == 1
    assert payment_ids(engine) == {"p1", "p2"}
    assert incremental_states(engine) == rebuilt_states(engine)
