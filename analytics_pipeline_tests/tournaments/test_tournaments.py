"""tournament_aggregates and tournament_history on hand-built events, with every expected number
worked out by hand below (docs/metrics.md#tournament_aggregates)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import dagster as dg
import pytest
import sqlalchemy as sa

from analytics_pipeline.aggregation.checks import NO_MALFORMED_EVENTS_CHECK, VALUES_FIT_COLUMNS_CHECK
from analytics_pipeline.core.resources import pipeline_resources
from analytics_pipeline.domains import declared_state_names
from analytics_pipeline.tournaments.assets import (
    TOURNAMENT_AGGREGATE,
    touched_tournament_days,
    tournament_aggregates,
    tournament_history,
)
from analytics_pipeline.tournaments.checks import (
    COMPLETED_COUNT_AT_MOST_TOURNAMENT_COUNT_CHECK,
    COMPLETION_RATE_BETWEEN_0_AND_100_CHECK,
    ROWS_MATCH_TOURNAMENT_HISTORY_CHECK,
)

from ..helpers import committed_since, db_snapshot, event, insert_events, range_tags, run_concurrently, table_rows

# 2025-03-03 is a Monday: the week 03-03..03-09 holds every tournament below.
EVENTS = [
    # A: created 03-03 (swiss), players u1, u2 (u1 twice), completed with duration_minutes 120
    # (the event's duration wins over the 150 minutes between start and completion).
    event("tournament_created", "2025-03-03 10:00", tournament_id="A", format="swiss"),
    event("player_registered", "2025-03-03 10:05", "u1", tournament_id="A"),
    event("player_registered", "2025-03-03 10:06", "u2", tournament_id="A"),
    event("player_registered", "2025-03-03 10:07", "u1", tournament_id="A"),
    event("tournament_started", "2025-03-03 12:00", tournament_id="A"),
    event("tournament_completed", "2025-03-03 14:30", tournament_id="A", duration_minutes=120),
    # A's revenue: 10 + "5.50" = 15.50; the second payment happens a day later, still A's.
    event("payment_completed", "2025-03-03 10:05", "u1", payment_id="p1", amount=10, tournament_id="A"),
    event("payment_completed", "2025-03-04 09:00", "u2", payment_id="p2", amount="5.50", tournament_id="A"),
    # B: created 03-03 (round_robin), one player, started; its completion arrives late (below).
    event("tournament_created", "2025-03-03 09:00", tournament_id="B", format="round_robin"),
    event("player_registered", "2025-03-03 09:30", "u3", tournament_id="B"),
    event("tournament_started", "2025-03-03 10:00", tournament_id="B"),
    # C: no tournament_created and no start: belongs to the day of its earliest event (03-04),
    # completed, but without duration_minutes or a start it stays out of the average.
    event("player_registered", "2025-03-04 08:00", "u1", tournament_id="C"),
    event("tournament_completed", "2025-03-04 20:00", tournament_id="C"),
    # D (swiss, cancelled) and E (round_robin) on 03-04; F (swiss) on 03-05.
    event("tournament_created", "2025-03-04 09:00", tournament_id="D", format="swiss"),
    event("tournament_cancelled", "2025-03-04 10:00", tournament_id="D"),
    event("tournament_created", "2025-03-04 11:00", tournament_id="E", format="round_robin"),
    event("tournament_created", "2025-03-05 11:00", tournament_id="F", format="swiss"),
    # Malformed: a creation without format, a payment with a non-numeric amount. Skipped, counted.
    event("tournament_created", "2025-03-03 08:00", tournament_id="X"),
    event("payment_completed", "2025-03-03 11:00", "u1", payment_id="p3", amount="abc", tournament_id="A"),
    # Not a tournament event: ignored.
    event("page_view", "2025-03-03 11:00", "u1"),
]

# B completes three days after it started: 03-03 10:00 -> 03-06 10:00 = 4320 minutes.
LATE_COMPLETION = event("tournament_completed", "2025-03-06 10:00", tournament_id="B")

COLUMNS = (
    "tournament_count", "completed_count", "completion_rate", "total_players", "avg_players",
    "avg_duration_minutes", "most_popular_format", "revenue",
)


def row(*values):
    return dict(zip(COLUMNS, values, strict=True))


D = Decimal
# Before B's completion arrives.
# 03-03: A, B. Completed A only: 50%. Players A{u1,u2} + B{u3} = 3, 1.50 each. Duration: A 120.
# Formats swiss 1, round_robin 1: a tie, so round_robin (alphabetically first). Revenue 15.50.
DAY_0303_BEFORE = row(2, 1, D("50.00"), 3, D("1.50"), D("120.00"), "round_robin", D("15.50"))
# After: B completed too, duration (120 + 4320) / 2 = 2220.
DAY_0303_AFTER = row(2, 2, D("100.00"), 3, D("1.50"), D("2220.00"), "round_robin", D("15.50"))
# 03-04: C, D, E. Completed C: 1/3 = 33.33%. Players C{u1}: 1/3 = 0.33. No duration known.
# Formats swiss (D) 1, round_robin (E) 1: round_robin. No revenue.
DAY_0304 = row(3, 1, D("33.33"), 1, D("0.33"), None, "round_robin", D("0.00"))
# 03-05: F alone.
DAY_0305 = row(1, 0, D("0.00"), 0, D("0.00"), None, "swiss", D("0.00"))
# The week, month, quarter and year hold A..F: 6 tournaments. Before: completed A, C = 33.33%;
# after: A, B, C = 50%. Players 4 -> 0.67. Durations: before A only (120), after A and B (2220);
# C never counts. Formats swiss 3 (A, D, F), round_robin 2: swiss. Revenue 15.50.
PERIOD_BEFORE = row(6, 2, D("33.33"), 4, D("0.67"), D("120.00"), "swiss", D("15.50"))
PERIOD_AFTER = row(6, 3, D("50.00"), 4, D("0.67"), D("2220.00"), "swiss", D("15.50"))

PERIOD_KEYS = {
    ("week", dt.date(2025, 3, 3), dt.date(2025, 3, 9)),
    ("month", dt.date(2025, 3, 1), dt.date(2025, 3, 31)),
    ("quarter", dt.date(2025, 1, 1), dt.date(2025, 3, 31)),
    ("year", dt.date(2025, 1, 1), dt.date(2025, 12, 31)),
}


def _materialize(db_url, first, last=None, run_config=None):
    tags = range_tags(first, last) if last else None
    return dg.materialize(
        [tournament_aggregates],
        partition_key=None if last else first,
        tags=tags,
        run_config=run_config,
        resources=pipeline_resources(db_url),
    )


def _rows(engine):
    return {
        (r["period_type"], r["period_start"], r["period_end"]): {c: r[c] for c in COLUMNS}
        for r in table_rows(engine, "tournament_aggregates", "id")
    }


def _aggregate_rows(engine):
    return table_rows(engine, "tournament_aggregates", "id")


def test_hand_worked_periods_and_late_completion(db_url, engine):
    insert_events(engine, EVENTS)
    result = _materialize(db_url, "2025-03-03", "2025-03-05")
    assert result.success

    expected = {
        ("day", dt.date(2025, 3, 3), dt.date(2025, 3, 3)): DAY_0303_BEFORE,
        ("day", dt.date(2025, 3, 4), dt.date(2025, 3, 4)): DAY_0304,
        ("day", dt.date(2025, 3, 5), dt.date(2025, 3, 5)): DAY_0305,
        **{key: PERIOD_BEFORE for key in PERIOD_KEYS},
    }
    assert _rows(engine) == expected
    ids = {r["id"] for r in _aggregate_rows(engine)}
    assert "t1:day:2025-03-03" in ids and "t1:week:2025-03-03" in ids

    # The completion arrives days later: the sensor asks for the day B belongs to, not 03-06.
    since = db_snapshot(engine)
    insert_events(engine, [LATE_COMPLETION])
    committed = committed_since(engine, since)
    with engine.connect() as conn:
        days = touched_tournament_days(conn, committed)
    assert days == {dt.date(2025, 3, 3)}
    with engine.connect() as conn:
        assert touched_tournament_days(conn, committed, before=dt.date(2025, 3, 3)) == set()

    assert _materialize(db_url, "2025-03-03").success
    expected[("day", dt.date(2025, 3, 3), dt.date(2025, 3, 3))] = DAY_0303_AFTER
    for key in PERIOD_KEYS:
        expected[key] = PERIOD_AFTER
    assert _rows(engine) == expected


def test_run_metadata_and_checks(db_url, engine):
    insert_events(engine, EVENTS)
    result = _materialize(db_url, "2025-03-03", "2025-03-05")
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["rows_day"].value == 3
    assert {metadata[f"rows_{p}"].value for p in ("week", "month", "quarter", "year")} == {1}
    assert metadata["tenants"].value == 1
    assert metadata["malformed_events"].value == 2
    assert metadata["malformed_events_by_type"].data == {"payment_completed": 1, "tournament_created": 1}
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert set(checks) == {
        COMPLETION_RATE_BETWEEN_0_AND_100_CHECK,
        COMPLETED_COUNT_AT_MOST_TOURNAMENT_COUNT_CHECK,
        ROWS_MATCH_TOURNAMENT_HISTORY_CHECK,
        NO_MALFORMED_EVENTS_CHECK,
        VALUES_FIT_COLUMNS_CHECK,
    }
    assert checks[VALUES_FIT_COLUMNS_CHECK].passed
    assert checks[COMPLETION_RATE_BETWEEN_0_AND_100_CHECK].passed
    assert checks[COMPLETED_COUNT_AT_MOST_TOURNAMENT_COUNT_CHECK].passed
    assert checks[ROWS_MATCH_TOURNAMENT_HISTORY_CHECK].passed
    assert not checks[NO_MALFORMED_EVENTS_CHECK].passed
    assert checks[NO_MALFORMED_EVENTS_CHECK].severity == dg.AssetCheckSeverity.WARN


@pytest.mark.parametrize(
    "corruption, failing",
    [
        (
            "completed_count = tournament_count + 1",
            {COMPLETED_COUNT_AT_MOST_TOURNAMENT_COUNT_CHECK, ROWS_MATCH_TOURNAMENT_HISTORY_CHECK},
        ),
        ("completion_rate = 150", {COMPLETION_RATE_BETWEEN_0_AND_100_CHECK}),
        ("revenue = revenue + 1", {ROWS_MATCH_TOURNAMENT_HISTORY_CHECK}),
    ],
)
def test_checks_fail_on_a_corrupted_row(db_url, engine, corruption, failing):
    insert_events(engine, EVENTS)
    _materialize(db_url, "2025-03-03", "2025-03-05")
    with engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE tournament_aggregates SET {corruption} WHERE id = 't1:week:2025-03-03'"))
        results = TOURNAMENT_AGGREGATE.check_stored_rows(conn, dt.date(2025, 3, 4), dt.date(2025, 3, 5))
    failed = {r.check_name for r in results if not r.passed} - {NO_MALFORMED_EVENTS_CHECK}
    assert failed == failing


def test_deleted_row_is_reported_missing(db_url, engine):
    insert_events(engine, EVENTS)
    _materialize(db_url, "2025-03-03", "2025-03-05")
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM tournament_aggregates WHERE id = 't1:day:2025-03-04'"))
        results = {r.check_name: r for r in TOURNAMENT_AGGREGATE.check_stored_rows(conn, dt.date(2025, 3, 4), dt.date(2025, 3, 5))}
    assert not results[ROWS_MATCH_TOURNAMENT_HISTORY_CHECK].passed
    assert "missing row" in str(results[ROWS_MATCH_TOURNAMENT_HISTORY_CHECK].metadata["examples"].data)


def test_rerun_and_reabsorbing_change_nothing(db_url, engine):
    insert_events(engine, EVENTS + [LATE_COMPLETION])
    _materialize(db_url, "2025-03-03", "2025-03-05")
    first = _aggregate_rows(engine)
    history = table_rows(engine, "tournament_history", "tournament_id")
    _materialize(db_url, "2025-03-03", "2025-03-05")
    # Make the state read every event again: counts and sums must not double.
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE state_watermarks SET absorbed_snapshot = NULL"))
    _materialize(db_url, "2025-03-01", "2025-03-10")
    assert _aggregate_rows(engine) == first
    assert table_rows(engine, "tournament_history", "tournament_id") == history


def test_state_asset_alone_then_aggregate(db_url, engine):
    insert_events(engine, EVENTS)
    resources = pipeline_resources(db_url)
    assert dg.materialize([tournament_history], resources=resources).success
    with engine.connect() as conn:
        a = conn.execute(
            sa.text("SELECT tournament_day, player_count, revenue FROM tournament_history WHERE tournament_id = 'A'")
        ).one()
    assert a == (dt.date(2025, 3, 3), 2, Decimal("15.50"))
    _materialize(db_url, "2025-03-03", "2025-03-05")
    assert _rows(engine)[("day", dt.date(2025, 3, 3), dt.date(2025, 3, 3))] == DAY_0303_BEFORE
    assert "tournament_history" in declared_state_names()


def test_two_overlapping_runs_at_once_leave_one_runs_rows(db_url, engine):
    insert_events(engine, EVENTS + [LATE_COMPLETION])
    outcomes = run_concurrently(
        lambda first, last: _materialize(db_url, first, last),
        ("2025-03-01", "2025-03-05"),
        ("2025-03-03", "2025-03-10"),
    )
    errors = [o for o in outcomes if isinstance(o, Exception)]
    results = [o.success for o in outcomes if not isinstance(o, Exception)]
    assert errors == [] and results == [True, True]
    concurrent = _aggregate_rows(engine)

    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM tournament_aggregates"))
    _materialize(db_url, "2025-03-01", "2025-03-10")
    assert concurrent == _aggregate_rows(engine)


def test_purge_then_recompute_keeps_every_row(db_url, engine):
    insert_events(engine, EVENTS + [LATE_COMPLETION])
    _materialize(db_url, "2025-03-03", "2025-03-06")
    before = _aggregate_rows(engine)

    # Retention purges events before 2025-03-04: A's and B's creation, players, start.
    cutoff = dt.datetime(2025, 3, 4)
    with engine.begin() as conn:
        purged = conn.execute(sa.text('DELETE FROM analytics_events WHERE "timestamp" < :c'), {"c": cutoff}).rowcount
    assert purged > 0

    # Every day is recomputed, 03-03 too, from state: the same rows.
    result = _materialize(db_url, "2025-03-03", "2025-03-06")
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["window"].text == "2025-03-03..2025-03-06"
    assert _aggregate_rows(engine) == before


def test_late_creation_moves_a_tournament_and_both_days_are_requested(db_url, engine):
    insert_events(engine, EVENTS)
    _materialize(db_url, "2025-03-02", "2025-03-05")
    # C had no creation event and so belonged to 03-04; its creation on 03-02 arrives late.
    late = event("tournament_created", "2025-03-02 18:00", tournament_id="C", format="swiss")
    since = db_snapshot(engine)
    insert_events(engine, [late])
    committed = committed_since(engine, since)
    with engine.connect() as conn:
        assert touched_tournament_days(conn, committed) == {dt.date(2025, 3, 2), dt.date(2025, 3, 4)}
    # Also once tournament_history has absorbed it (the hourly run may come first).
    dg.materialize([tournament_history], resources=pipeline_resources(db_url))
    with engine.connect() as conn:
        assert touched_tournament_days(conn, committed) == {dt.date(2025, 3, 2), dt.date(2025, 3, 4)}

    _materialize(db_url, "2025-03-02", "2025-03-02")
    _materialize(db_url, "2025-03-04", "2025-03-04")
    rows = _rows(engine)
    assert rows[("day", dt.date(2025, 3, 2), dt.date(2025, 3, 2))]["tournament_count"] == 1
    assert rows[("day", dt.date(2025, 3, 4), dt.date(2025, 3, 4))]["tournament_count"] == 2  # D, E


def test_payment_before_any_tournament_event_waits_for_it(db_url, engine):
    early = [event("payment_completed", "2025-03-03 09:00", "u1", payment_id="p9", amount=7, tournament_id="G")]
    insert_events(engine, early)
    _materialize(db_url, "2025-03-03")
    assert _rows(engine) == {}  # a payment alone is not a tournament
    insert_events(
        engine,
        [event("tournament_created", "2025-03-03 08:00", tournament_id="G", format="swiss")],
    )
    _materialize(db_url, "2025-03-03")
    day = _rows(engine)[("day", dt.date(2025, 3, 3), dt.date(2025, 3, 3))]
    assert (day["tournament_count"], day["revenue"]) == (1, Decimal("7.00"))
