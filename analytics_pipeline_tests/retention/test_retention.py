"""Retention cleanup of raw events: what goes, what stays, and what makes it refuse.

Every expected value is worked out by hand from the few events each test inserts. Derived state
absorbs events in commit order (analytics_pipeline/aggregation/state.py): a state holds exactly the events
whose transaction is visible in the snapshot of its last absorb, whatever their created_at.
"""

import datetime as dt
import itertools
import threading

import pytest
import sqlalchemy as sa

from analytics_pipeline.core import schema
from analytics_pipeline.core.settings import ConfigError
from analytics_pipeline.retention import RetentionRefused, purge_expired_events, retention_cutoff
from analytics_pipeline.retention.purge import HELD_BACK_UNABSORBED, HeldBackEvents

from ..helpers import absorb_everything, no_older_transaction_in_flight, set_watermark

CUTOFF = dt.datetime(2024, 3, 15)
DAY = dt.timedelta(days=1)
US = dt.timedelta(microseconds=1)


def purge(engine, cutoff, states=(), **kwargs):
    """The purge waiting for `states` only: tests that are not about derived state wait for none,
    whatever states the domains declare."""
    return purge_expired_events(engine, cutoff, states=states, **kwargs)


def _snapshot_xmin(engine, state_name: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(
            "SELECT pg_snapshot_xmin(absorbed_snapshot) FROM state_watermarks WHERE state_name = :n"
        ), {"n": state_name}).scalar_one())


class RunKilled(Exception):
    pass


def _tenants(engine, *tenants: str) -> None:
    with engine.begin() as conn:
        for t in tenants:
            conn.execute(sa.text("INSERT INTO organizations (id, name) VALUES (:t, :t)"), {"t": t})
            conn.execute(
                sa.text("INSERT INTO users (id, tenant_id) VALUES (:u, :t)"), {"u": f"{t}-u", "t": t}
            )


def _event(conn, event_id: str, tenant: str, timestamp: dt.datetime, created_at=None) -> None:
    conn.execute(
        sa.text(
            'INSERT INTO analytics_events (id, tenant_id, event_type, event_data, user_id, "timestamp", created_at) '
            "VALUES (:id, :t, 'page_view', CAST(:data AS jsonb), :u, :ts, coalesce(:created, now()))"
        ),
        {"id": event_id, "t": tenant, "data": '{"page": "/"}', "u": f"{tenant}-u", "ts": timestamp,
         "created": created_at},
    )


def _events(engine, rows) -> None:
    """Insert the events in one transaction."""
    with engine.begin() as conn:
        for row in rows:
            _event(conn, *row)


def _event_ids(engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(sa.text("SELECT id FROM analytics_events")).scalars())


@pytest.fixture
def two_tenants(engine):
    _tenants(engine, "acme", "globex")
    _events(
        engine,
        [
            ("a-old", "acme", CUTOFF - 40 * DAY),
            ("a-last", "acme", CUTOFF - US),  # the last instant before the cutoff: goes
            ("a-at", "acme", CUTOFF),  # exactly at the cutoff: stays
            ("a-new", "acme", CUTOFF + 200 * DAY),
            ("g-old", "globex", CUTOFF - 400 * DAY),
            ("g-new", "globex", CUTOFF + US),
        ],
    )
    return engine


def test_deletes_before_the_cutoff_and_keeps_the_event_exactly_at_it(two_tenants):
    with two_tenants.connect() as conn:
        before = conn.execute(sa.text("SELECT * FROM analytics_events WHERE id IN ('a-at', 'a-new', 'g-new') ORDER BY id")).all()

    report = purge(two_tenants, CUTOFF)

    assert report.rows_by_tenant == {"acme": 2, "globex": 1}
    assert report.rows == 3 and report.batches == 2 and report.complete
    assert report.oldest_remaining_timestamp == CUTOFF
    # Newer events of both tenants are untouched, column by column.
    with two_tenants.connect() as conn:
        after = conn.execute(sa.text("SELECT * FROM analytics_events ORDER BY id")).all()
    assert after == before


def test_a_second_run_finds_nothing_left(two_tenants):
    purge(two_tenants, CUTOFF)
    again = purge(two_tenants, CUTOFF)
    assert again.rows_by_tenant == {} and again.batches == 0
    assert _event_ids(two_tenants) == {"a-at", "a-new", "g-new"}


def test_dry_run_counts_and_deletes_nothing(two_tenants):
    report = purge(two_tenants, CUTOFF, dry_run=True, batch_size=1)
    assert report.dry_run
    assert report.rows_by_tenant == {"acme": 2, "globex": 1}
    assert report.batches == 3  # three rows at one per batch
    assert report.oldest_remaining_timestamp == CUTOFF - 400 * DAY
    assert len(_event_ids(two_tenants)) == 6


def _snapshot_all_but_events(engine) -> dict[str, list]:
    with engine.connect() as conn:
        return {
            t.name: sorted(map(tuple, conn.execute(sa.select(t)).all()), key=repr)
            for t in schema.metadata.sorted_tables
            if t is not schema.analytics_events
        }


def test_aggregates_and_state_are_never_purged(two_tenants):
    states = ["subscription_history"]
    absorb_everything(two_tenants, *states)
    old_day = dt.date(2022, 1, 1)  # far older than any cutoff
    with two_tenants.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO revenue_aggregates (id, tenant_id, period_start, period_end, period_type, "
                "mrr, arr, new_revenue, churned_revenue, expansion_revenue, total_revenue, "
                "payment_count, payment_success_count, refund_count, refund_amount) "
                "VALUES ('r1', 'acme', :d, :d, 'day', 10, 120, 10, 0, 0, 10, 1, 1, 0, 0)"
            ),
            {"d": old_day},
        )
        conn.execute(
            sa.text(
                "INSERT INTO user_cohorts (id, tenant_id, cohort_month, cohort_size, month_number, "
                "retained_users, retention_rate, revenue, ltv) "
                "VALUES ('c1', 'globex', :d, 5, 0, 5, 100, 0, 0)"
            ),
            {"d": old_day},
        )
        conn.execute(
            sa.text(
                "INSERT INTO tournament_aggregates (id, tenant_id, period_start, period_end, "
                "period_type, tournament_count, completed_count, completion_rate, total_players, "
                "avg_players, revenue) VALUES ('t1', 'acme', :d, :d, 'day', 1, 1, 100, 8, 8, 0)"
            ),
            {"d": old_day},
        )
    before = _snapshot_all_but_events(two_tenants)

    assert purge(two_tenants, CUTOFF, states).rows == 3

    assert _snapshot_all_but_events(two_tenants) == before
    assert all(before[name] for name in ("revenue_aggregates", "user_cohorts", "tournament_aggregates", "state_watermarks"))


@pytest.mark.parametrize("never", ["no watermark row", "a row without a snapshot"])
def test_refuses_while_a_registered_state_was_never_materialized(two_tenants, never):
    states = ["subscription_history", "user_activity"]
    absorb_everything(two_tenants, "user_activity")
    if never == "a row without a snapshot":  # as every state is right after revision 0018
        set_watermark(two_tenants, "subscription_history", absorbed=False)

    for dry_run in (True, False):
        with pytest.raises(
            RetentionRefused, match=r"materialize first: subscription_history \(never materialized\)$"
        ) as refused:
            purge(two_tenants, CUTOFF, states, dry_run=dry_run)
        assert refused.value.assets == ["subscription_history"]
    assert len(_event_ids(two_tenants)) == 6


def test_refuses_while_a_state_has_not_absorbed_every_expired_event(two_tenants):
    states = ["subscription_history", "user_activity"]
    absorb_everything(two_tenants, *states)
    # An expired event committed after both absorbed, backdated (created_at = its own time, as an
    # import writes it): created_at plays no part. subscription_history absorbs it, user_activity
    # has not yet.
    _events(two_tenants, [("late", "globex", CUTOFF - 10 * DAY, CUTOFF - 10 * DAY)])
    absorb_everything(two_tenants, "subscription_history")

    for dry_run in (True, False):
        with pytest.raises(
            RetentionRefused,
            match=r"materialize first: user_activity \(expired events committed since its last absorb\)$",
        ) as refused:
            purge(two_tenants, CUTOFF, states, dry_run=dry_run)
        assert refused.value.assets == ["user_activity"]
    assert len(_event_ids(two_tenants)) == 7

    # Once it has absorbed it too, the expired events go. The horizon is the older snapshot's
    # xmin: subscription_history's, which absorbed first.
    absorb_everything(two_tenants, "user_activity")
    report = purge(two_tenants, CUTOFF, states)
    assert report.rows_by_tenant == {"acme": 2, "globex": 2}
    assert report.held_back == HeldBackEvents()
    assert report.absorbed_horizon == _snapshot_xmin(two_tenants, "subscription_history")
    assert report.absorbed_horizon <= _snapshot_xmin(two_tenants, "user_activity")
    assert _event_ids(two_tenants) == {"a-at", "a-new", "g-new"}


def test_events_committed_since_the_last_absorb_that_have_not_expired_do_not_hold_it_up(two_tenants):
    states = ["subscription_history"]
    absorb_everything(two_tenants, *states)
    # Committed since: one exactly at the cutoff, one after it. Neither has expired.
    _events(two_tenants, [("fresh", "acme", CUTOFF), ("fresh-2", "globex", CUTOFF + DAY)])

    report = purge(two_tenants, CUTOFF, states)

    assert report.rows_by_tenant == {"acme": 2, "globex": 1}
    assert report.held_back == HeldBackEvents()
    assert _event_ids(two_tenants) == {"a-at", "a-new", "g-new", "fresh", "fresh-2"}


def test_an_expired_event_in_flight_at_the_last_absorb_stays_until_the_state_absorbs_again(two_tenants):
    states = ["subscription_history"]
    absorb_everything(two_tenants, *states)
    with two_tenants.connect() as platform:
        # A platform transaction inserts an expired event, backdated, and is still running when
        # the state absorbs; it commits afterwards: the state's snapshot does not hold it.
        platform.begin()
        _event(platform, "in-flight", "globex", CUTOFF - 10 * DAY, CUTOFF - 10 * DAY)
        set_watermark(two_tenants, "subscription_history")
        platform.commit()
    with two_tenants.connect() as conn:
        in_snapshot = conn.execute(sa.text(
            "SELECT pg_visible_in_snapshot(e.ingest_xid, w.absorbed_snapshot) FROM analytics_events AS e, "
            "state_watermarks AS w WHERE e.id = 'in-flight' AND w.state_name = 'subscription_history'"
        )).scalar_one()
    assert in_snapshot is False

    for dry_run in (True, False):
        with pytest.raises(
            RetentionRefused,
            match=r"subscription_history \(expired events committed since its last absorb\)$",
        ) as refused:
            purge(two_tenants, CUTOFF, states, dry_run=dry_run)
        assert refused.value.assets == ["subscription_history"]
    assert len(_event_ids(two_tenants)) == 7

    # The state's next absorb reads it: now it goes, with the others.
    absorb_everything(two_tenants, *states)
    report = purge(two_tenants, CUTOFF, states)
    assert report.rows_by_tenant == {"acme": 2, "globex": 2}
    assert report.held_back == HeldBackEvents()
    assert _event_ids(two_tenants) == {"a-at", "a-new", "g-new"}


def test_an_expired_event_above_the_horizon_is_held_back_and_deleted_after_the_next_absorb(two_tenants):
    states = ["subscription_history"]
    no_older_transaction_in_flight(two_tenants)  # the fixture's events lie below any later horizon
    with two_tenants.connect() as older:
        # A platform transaction has written (it has a transaction id) and is still running while
        # two expired events are committed and the state absorbs them: the state holds them, but
        # its snapshot's xmin, the horizon, is that older transaction, and they lie above it.
        older_xid = int(older.execute(sa.text("SELECT pg_current_xact_id()")).scalar_one())
        _events(two_tenants, [("late-b", "globex", CUTOFF - 10 * DAY), ("late-a", "acme", CUTOFF - 9 * DAY)])
        set_watermark(two_tenants, "subscription_history")
        older.rollback()

    dry = purge(two_tenants, CUTOFF, states, dry_run=True)
    report = purge(two_tenants, CUTOFF, states)

    held = HeldBackEvents(2, {HELD_BACK_UNABSORBED: 2}, "late-a", "late-b")
    assert dry.rows_by_tenant == report.rows_by_tenant == {"acme": 2, "globex": 1}
    assert dry.held_back == report.held_back == held
    assert report.absorbed_horizon <= older_xid
    assert report.metadata()["held_back"] == 2
    assert report.metadata()["held_back_ids"] == "late-a .. late-b"
    assert _event_ids(two_tenants) == {"a-at", "a-new", "g-new", "late-a", "late-b"}

    # The state absorbs again with no older transaction running: the horizon passes them.
    absorb_everything(two_tenants, *states)
    again = purge(two_tenants, CUTOFF, states)
    assert again.rows_by_tenant == {"acme": 1, "globex": 1}
    assert again.held_back == HeldBackEvents()
    assert _event_ids(two_tenants) == {"a-at", "a-new", "g-new"}


def test_events_inserted_before_commit_order_ingestion_go_only_once_every_state_has_a_snapshot(two_tenants):
    states = ["subscription_history", "user_activity"]
    with two_tenants.begin() as conn:
        # Inserted before revision 0018: no ingest_xid. Two expired, one not.
        conn.execute(sa.text("UPDATE analytics_events SET ingest_xid = NULL WHERE id IN ('a-old', 'g-old', 'a-new')"))
    absorb_everything(two_tenants, "subscription_history")
    set_watermark(two_tenants, "user_activity", absorbed=False)  # not absorbed since the upgrade

    for dry_run in (True, False):
        with pytest.raises(
            RetentionRefused, match=r"materialize first: user_activity \(never materialized\)$"
        ) as refused:
            purge(two_tenants, CUTOFF, states, dry_run=dry_run)
        assert refused.value.assets == ["user_activity"]
    assert len(_event_ids(two_tenants)) == 6

    # Its first absorb reads every event, those without an ingest_xid included: now they go.
    absorb_everything(two_tenants, "user_activity")
    report = purge(two_tenants, CUTOFF, states)
    assert report.rows_by_tenant == {"acme": 2, "globex": 1}
    assert report.held_back == HeldBackEvents()
    assert _event_ids(two_tenants) == {"a-at", "a-new", "g-new"}


def test_a_late_expired_event_arriving_during_the_purge_is_kept(two_tenants):
    states = ["subscription_history"]
    absorb_everything(two_tenants, *states)
    arrived = []

    def platform_writes_a_late_event(tenant_id, rows):
        # A late event about an expired day, committed after the state's absorb: the state does
        # not hold it, so it must stay, although later batches of its tenant run.
        if not arrived:
            _events(two_tenants, [("late", "globex", CUTOFF - 10 * DAY, CUTOFF - 10 * DAY)])
            arrived.append(True)

    report = purge(two_tenants, CUTOFF, states, batch_size=1, on_batch=platform_writes_a_late_event)

    assert report.rows == 3
    assert _event_ids(two_tenants) == {"a-at", "a-new", "g-new", "late"}
    # The next cleanup waits for the state to absorb it, then deletes it.
    with pytest.raises(RetentionRefused, match=r"subscription_history \(expired events committed since"):
        purge(two_tenants, CUTOFF, states)
    absorb_everything(two_tenants, *states)
    assert purge(two_tenants, CUTOFF, states).rows_by_tenant == {"globex": 1}
    assert _event_ids(two_tenants) == {"a-at", "a-new", "g-new"}


def test_a_run_stopped_by_its_time_budget_resumes_where_it_stopped(engine):
    _tenants(engine, "acme")
    _events(engine, [(f"e{i:02d}", "acme", CUTOFF - (20 - i) * DAY) for i in range(20)])
    ticks = itertools.count()  # a clock that advances one second per reading

    first = purge(
        engine, CUTOFF, batch_size=3, time_budget=dt.timedelta(seconds=4), clock=lambda: next(ticks)
    )

    # Readings: start 0, then before each batch 1, 2, 3 (batches run), 4 (budget spent).
    assert not first.complete
    assert first.batches == 3 and first.rows == 9
    # Oldest first: e00..e08 went, e09 (11 days before the cutoff) is the oldest left.
    assert first.oldest_remaining_timestamp == CUTOFF - 11 * DAY

    second = purge(engine, CUTOFF, batch_size=3)
    assert second.complete and second.rows == 11 and second.batches == 4
    assert _event_ids(engine) == set()


def test_a_run_killed_between_batches_leaves_whole_batches_and_the_next_finishes(engine):
    _tenants(engine, "acme")
    _events(engine, [(f"e{i:02d}", "acme", CUTOFF - (10 - i) * DAY) for i in range(10)])
    _events(engine, [("kept", "acme", CUTOFF)])
    committed = []

    def killed_after_two_batches(tenant_id, rows):
        committed.append(rows)
        if len(committed) == 2:
            raise RunKilled

    with pytest.raises(RunKilled):
        purge(engine, CUTOFF, batch_size=4, on_batch=killed_after_two_batches)

    assert _event_ids(engine) == {"e08", "e09", "kept"}
    assert purge(engine, CUTOFF, batch_size=4).rows == 2
    assert _event_ids(engine) == {"kept"}


def test_racing_purges_and_platform_inserts_lose_no_new_event(engine):
    tenants = ("acme", "globex")
    _tenants(engine, *tenants)
    expired = [(f"{t}-{i:03d}", t, CUTOFF - (i + 1) * dt.timedelta(hours=1)) for t in tenants for i in range(150)]
    _events(engine, expired)
    done = threading.Event()
    inserted: list[str] = []

    def platform():
        # One event per transaction, as the platform writes them, until both purges are done.
        for n in itertools.count():
            if done.is_set() and n > 20:
                return
            event_id = f"new-{n}"
            _events(engine, [(event_id, tenants[n % 2], CUTOFF + n * US)])
            inserted.append(event_id)

    reports = []
    inserter = threading.Thread(target=platform)
    purges = [
        threading.Thread(target=lambda: reports.append(purge(engine, CUTOFF, batch_size=7)))
        for _ in range(2)
    ]
    inserter.start()
    for p in purges:
        p.start()
    for p in purges:
        p.join()
    done.set()
    inserter.join()

    assert len(reports) == 2
    # Each expired event deleted exactly once between the two runs; every new one still there.
    assert sum(r.rows for r in reports) == 300
    assert _event_ids(engine) == set(inserted)


def test_cutoff_for_other_month_counts_clamps_to_the_month_end():
    now = dt.datetime(2025, 3, 31, 17, 45)
    assert retention_cutoff(now, months=1) == dt.datetime(2025, 2, 28)
    assert retention_cutoff(now, months=13) == dt.datetime(2024, 2, 29)
    assert retention_cutoff(now, months=15) == dt.datetime(2023, 12, 31)
    with pytest.raises(ConfigError, match="months must be a whole number >= 1"):
        retention_cutoff(now, months=0)


# A heap delete's WAL record is at least 54 bytes (24 of record header, 20 of block reference,
# 2 + 8 of xl_heap_delete), whatever else the server writes meanwhile; more with a full-page image.
MIN_WAL_BYTES_PER_DELETE = 54


def test_each_batch_pauses_for_its_wal_at_the_limit_rate(engine):
    _tenants(engine, "acme")
    _events(engine, [(f"e{i}", "acme", CUTOFF - (i + 1) * DAY) for i in range(5)])
    slept = []
    limit_bytes_per_second = 54

    report = purge(
        engine, CUTOFF, batch_size=2, max_wal_mb_per_second=limit_bytes_per_second / 1e6,
        sleep=slept.append,
    )

    # Batches of 2, 2 and 1 rows: each wrote at least 54 bytes a row, so at 54 bytes/s it pauses
    # for at least a second a row, less the batch's own few milliseconds.
    assert report.rows == 5 and report.batches == 3
    assert len(slept) == 3
    assert slept[0] > 1.5 and slept[1] > 1.5 and slept[2] > 0.5
    assert report.paused_seconds == pytest.approx(sum(slept))
    assert report.wal_bytes >= 5 * MIN_WAL_BYTES_PER_DELETE
    assert report.metadata()["paused_seconds"] == round(sum(slept), 3)
    assert _event_ids(engine) == set()


def test_without_a_wal_limit_no_batch_pauses(two_tenants):
    slept = []
    report = purge(two_tenants, CUTOFF, batch_size=1, max_wal_mb_per_second=None,
                                  sleep=slept.append)
    assert report.rows == 3 and slept == [] and report.paused_seconds == 0
    assert report.wal_bytes >= 3 * MIN_WAL_BYTES_PER_DELETE


@pytest.mark.parametrize("limit", [0, -1.0, float("nan")])
def test_a_wal_limit_that_is_not_positive_is_refused_before_deleting(two_tenants, limit):
    with pytest.raises(ConfigError, match="max_wal_mb_per_second must be > 0, got"):
        purge(two_tenants, CUTOFF, max_wal_mb_per_second=limit)
    assert len(_event_ids(two_tenants)) == 6
