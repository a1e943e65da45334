"""Retention cleanup of raw events: what goes, what stays, and what makes it refuse.

Every expected value is worked out by hand from the few events each test inserts.
"""

import datetime as dt
import itertools
import threading

import pytest
import sqlalchemy as sa

from analytics_pipeline import schema
from analytics_pipeline.retention import RetentionRefused, purge_expired_events
from analytics_pipeline.settings import ConfigError, retention_cutoff

from .helpers import set_watermark

CUTOFF = dt.datetime(2024, 3, 15)
DAY = dt.timedelta(days=1)
US = dt.timedelta(microseconds=1)
# When the platform wrote the old events: long before any watermark in these tests.
OLD_CREATED = dt.datetime(2024, 4, 1)


def purge(engine, cutoff, states=(), **kwargs):
    """The purge waiting for `states` only: tests that are not about derived state wait for none,
    whatever states the domains declare."""
    return purge_expired_events(engine, cutoff, states=states, **kwargs)


class RunKilled(Exception):
    pass


def _tenants(engine, *tenants: str) -> None:
    with engine.begin() as conn:
        for t in tenants:
            conn.execute(sa.text("INSERT INTO organizations (id, name) VALUES (:t, :t)"), {"t": t})
            conn.execute(
                sa.text("INSERT INTO users (id, tenant_id) VALUES (:u, :t)"), {"u": f"{t}-u", "t": t}
            )


def _event(conn, event_id: str, tenant: str, timestamp: dt.datetime, created_at=OLD_CREATED) -> None:
    conn.execute(
        sa.text(
            'INSERT INTO analytics_events (id, tenant_id, event_type, event_data, user_id, "timestamp", created_at) '
            "VALUES (:id, :t, 'page_view', CAST(:data AS jsonb), :u, :ts, coalesce(:created, now()))"
        ),
        {"id": event_id, "t": tenant, "data": '{"page": "/"}', "u": f"{tenant}-u", "ts": timestamp,
         "created": created_at},
    )


def _events(engine, rows) -> None:
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
    set_watermark(two_tenants, "subscription_history", dt.datetime(2025, 1, 1))
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


def test_refuses_while_a_registered_state_was_never_materialized(two_tenants):
    states = ["subscription_history", "user_activity"]
    set_watermark(two_tenants, "user_activity", dt.datetime(2025, 1, 1))

    with pytest.raises(RetentionRefused, match="materialize first: subscription_history") as refused:
        purge(two_tenants, CUTOFF, states)

    assert refused.value.assets == ["subscription_history"]
    assert len(_event_ids(two_tenants)) == 6


def test_refuses_while_a_state_has_not_absorbed_every_expired_event(two_tenants):
    states = ["subscription_history", "user_activity"]
    set_watermark(two_tenants, "subscription_history", dt.datetime(2025, 1, 1))
    # Absorbed through 00:30 on the day the old events were written: its horizon (minus the
    # one-hour overlap) is before their created_at, so it may not hold them yet.
    set_watermark(two_tenants, "user_activity", OLD_CREATED + dt.timedelta(minutes=30))

    with pytest.raises(RetentionRefused, match=r"user_activity \(has absorbed") as refused:
        purge(two_tenants, CUTOFF, states, dry_run=True)

    assert refused.value.assets == ["user_activity"]
    assert len(_event_ids(two_tenants)) == 6

    # Once it has absorbed them (its watermark one hour and a bit past their creation), it goes.
    set_watermark(two_tenants, "user_activity", OLD_CREATED + dt.timedelta(hours=1, seconds=1))
    report = purge(two_tenants, CUTOFF, states)
    assert report.rows == 3
    assert report.absorbed_horizon == OLD_CREATED + dt.timedelta(seconds=1)


def test_a_late_expired_event_arriving_during_the_purge_is_kept(two_tenants):
    states = ["subscription_history"]
    set_watermark(two_tenants, "subscription_history", dt.datetime(2025, 1, 1))
    arrived = []

    def platform_writes_a_late_event(tenant_id, rows):
        # A late event about an expired day: no state has absorbed it, so it must stay.
        if not arrived:
            _events(two_tenants, [("late", "globex", CUTOFF - 10 * DAY, None)])
            arrived.append(True)

    report = purge(two_tenants, CUTOFF, states, batch_size=1, on_batch=platform_writes_a_late_event)

    assert report.rows == 3
    assert _event_ids(two_tenants) == {"a-at", "a-new", "g-new", "late"}


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
            _events(engine, [(event_id, tenants[n % 2], CUTOFF + n * US, None)])
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
