"""user_cohorts, user_signups and user_activity_months on hand-built events, with every expected
number worked out by hand below (docs/metrics.md#user_cohorts)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import dagster as dg
import pytest
import sqlalchemy as sa

from analytics_pipeline.aggregation.checks import NO_MALFORMED_EVENTS_CHECK
from analytics_pipeline.cohorts.assets import USER_COHORTS_AGGREGATE, user_activity_months, user_cohorts, user_signups
from analytics_pipeline.cohorts.checks import (
    LTV_NEVER_DECREASES_CHECK,
    RETAINED_USERS_AT_MOST_COHORT_SIZE_CHECK,
    RETENTION_RATE_BETWEEN_0_AND_100_CHECK,
    ROWS_MATCH_USER_STATE_CHECK,
)
from analytics_pipeline.cohorts.schedules import user_cohorts_daily
from analytics_pipeline.core.resources import pipeline_resources
from analytics_pipeline.domains import declared_state_names

from ..helpers import event, insert_events, range_tags, run_concurrently, table_rows

EVENTS = [
    # u1: cohort January; active in months 0, 2 and 5 only.
    event("user_signup", "2025-01-05 10:00", "u1"),
    event("page_view", "2025-03-10 10:00", "u1"),
    event("user_login", "2025-06-02 10:00", "u1"),
    # u2: cohort January (a second signup later that month changes nothing); pays 30 in month 3
    # only, which is also its only activity after month 0.
    event("user_signup", "2025-01-20 10:00", "u2"),
    event("user_signup", "2025-01-25 10:00", "u2"),
    event("payment_completed", "2025-04-15 10:00", "u2", payment_id="p1", amount="30.00"),
    # u3: cohort February; pays 20 in month 0.
    event("user_signup", "2025-02-10 10:00", "u3"),
    event("payment_completed", "2025-02-12 10:00", "u3", payment_id="p2", amount=20),
    # u4 never signed up: in no cohort, though active.
    event("page_view", "2025-03-01 10:00", "u4"),
    # Malformed: a signup without a user, and u1's payment with a negative amount in May, which is
    # therefore neither revenue nor activity.
    event("user_signup", "2025-02-01 10:00"),
    event("payment_completed", "2025-05-03 10:00", "u1", payment_id="p3", amount=-5),
]

COLUMNS = ("cohort_size", "retained_users", "retention_rate", "revenue", "ltv")
D = Decimal
JAN, FEB = dt.date(2025, 1, 1), dt.date(2025, 2, 1)

# (cohort_month, month_number): (cohort_size, retained_users, retention_rate, revenue, ltv)
EXPECTED = {
    # January: u1, u2. ltv = cumulative revenue / 2.
    (JAN, 0): (2, 2, D("100.00"), D("0.00"), D("0.00")),  # month 0 is the whole cohort
    (JAN, 1): (2, 0, D("0.00"), D("0.00"), D("0.00")),  # February: nobody
    (JAN, 2): (2, 1, D("50.00"), D("0.00"), D("0.00")),  # March: u1
    (JAN, 3): (2, 1, D("50.00"), D("30.00"), D("15.00")),  # April: u2 pays 30
    (JAN, 4): (2, 0, D("0.00"), D("0.00"), D("15.00")),  # May: u1's payment is malformed
    (JAN, 5): (2, 1, D("50.00"), D("0.00"), D("15.00")),  # June: u1
    # February: u3, who paid 20 in month 0 and was never seen again.
    (FEB, 0): (1, 1, D("100.00"), D("20.00"), D("20.00")),
    (FEB, 1): (1, 0, D("0.00"), D("0.00"), D("20.00")),
    (FEB, 2): (1, 0, D("0.00"), D("0.00"), D("20.00")),
    (FEB, 3): (1, 0, D("0.00"), D("0.00"), D("20.00")),
    (FEB, 4): (1, 0, D("0.00"), D("0.00"), D("20.00")),
}


def _materialize(db_url, first, last=None, run_config=None):
    return dg.materialize(
        [user_cohorts],
        partition_key=None if last else first,
        tags=range_tags(first, last) if last else None,
        run_config=run_config,
        resources=pipeline_resources(db_url),
    )


def _rows(engine):
    return {
        (r["cohort_month"], r["month_number"]): tuple(r[c] for c in COLUMNS)
        for r in table_rows(engine, "user_cohorts", "id")
    }


def test_hand_worked_triangle(db_url, engine):
    insert_events(engine, EVENTS)
    result = _materialize(db_url, "2025-01-01", "2025-06-01")
    assert result.success
    assert _rows(engine) == EXPECTED
    ids = {r["id"] for r in table_rows(engine, "user_cohorts", "id")}
    assert "t1:2025-01-01:5" in ids

    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["rows_written"].value == 11
    assert metadata["malformed_events"].value == 2
    assert metadata["malformed_events_by_type"].data == {"payment_completed": 1, "user_signup": 1}
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert [name for name, c in checks.items() if not c.passed] == [NO_MALFORMED_EVENTS_CHECK]
    assert checks[NO_MALFORMED_EVENTS_CHECK].severity == dg.AssetCheckSeverity.WARN


def test_a_partition_writes_the_rows_of_its_month(db_url, engine):
    insert_events(engine, EVENTS)
    _materialize(db_url, "2025-04-01")
    assert _rows(engine) == {key: EXPECTED[key] for key in [(JAN, 3), (FEB, 2)]}


@pytest.mark.parametrize(
    "corruption, row_id, failing",
    [
        (
            "retained_users = cohort_size + 1",
            "t1:2025-01-01:3",
            {RETAINED_USERS_AT_MOST_COHORT_SIZE_CHECK, ROWS_MATCH_USER_STATE_CHECK},
        ),
        ("retention_rate = -1", "t1:2025-01-01:3", {RETENTION_RATE_BETWEEN_0_AND_100_CHECK}),
        ("ltv = 1", "t1:2025-01-01:4", {LTV_NEVER_DECREASES_CHECK, ROWS_MATCH_USER_STATE_CHECK}),
        # Within every other rule, but not what the state says.
        ("revenue = 0.01", "t1:2025-01-01:4", {ROWS_MATCH_USER_STATE_CHECK}),
        ("cohort_size = 3", "t1:2025-01-01:4", {ROWS_MATCH_USER_STATE_CHECK}),
        ("ltv = 15.01", "t1:2025-01-01:5", {ROWS_MATCH_USER_STATE_CHECK}),
        ("retained_users = 0, retention_rate = 0", "t1:2025-01-01:3", {ROWS_MATCH_USER_STATE_CHECK}),
    ],
)
def test_checks_fail_on_a_corrupted_row(db_url, engine, corruption, row_id, failing):
    insert_events(engine, EVENTS)
    _materialize(db_url, "2025-01-01", "2025-06-01")
    with engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE user_cohorts SET {corruption} WHERE id = :id"), {"id": row_id})
        results = USER_COHORTS_AGGREGATE.check_stored_rows(conn, dt.date(2025, 4, 1), dt.date(2025, 7, 1))
    assert {r.check_name for r in results if not r.passed} - {NO_MALFORMED_EVENTS_CHECK} == failing


@pytest.mark.parametrize(
    "change",
    [
        "DELETE FROM user_cohorts WHERE id = 't1:2025-02-01:3'",
        # A row of a cohort that has no users (March), for a month the check covers (May).
        "INSERT INTO user_cohorts (id, tenant_id, cohort_month, cohort_size, month_number, "
        "retained_users, retention_rate, revenue, ltv) "
        "VALUES ('t1:2025-03-01:2', 't1', '2025-03-01', 1, 2, 0, 0, 0, 0)",
    ],
    ids=["missing row", "extra row"],
)
def test_state_check_fails_on_a_missing_or_extra_row(db_url, engine, change):
    insert_events(engine, EVENTS)
    _materialize(db_url, "2025-01-01", "2025-06-01")
    with engine.begin() as conn:
        conn.execute(sa.text(change))
        results = USER_COHORTS_AGGREGATE.check_stored_rows(conn, dt.date(2025, 4, 1), dt.date(2025, 6, 1))
    failed = {r.check_name for r in results if not r.passed} - {NO_MALFORMED_EVENTS_CHECK}
    assert failed == {ROWS_MATCH_USER_STATE_CHECK}


def test_a_run_of_the_last_months_counts_late_revenue_of_earlier_months_in_ltv(db_url, engine):
    insert_events(engine, EVENTS)
    _materialize(db_url, "2025-01-01", "2025-06-01")
    # Late: u1 pays 10 in February (a user month not yet in the state) and u2 pays 5 more in
    # April (a month the state already holds with 30).
    insert_events(engine, [
        event("payment_completed", "2025-02-20 10:00", "u1", payment_id="p4", amount="10.00"),
        event("payment_completed", "2025-04-20 10:00", "u2", payment_id="p5", amount="5.00"),
    ])

    # The daily run's shape: only the last months. Their ltv includes all the January cohort's
    # revenue so far, (10 + 30 + 5) / 2; the earlier months' rows wait for their own run.
    result = _materialize(db_url, "2025-05-01", "2025-06-01")
    assert all(c.passed for c in result.get_asset_check_evaluations() if c.check_name != NO_MALFORMED_EVENTS_CHECK)
    late = {
        (JAN, 4): (2, 0, D("0.00"), D("0.00"), D("22.50")),
        (JAN, 5): (2, 1, D("50.00"), D("0.00"), D("22.50")),
    }
    assert _rows(engine) == {**EXPECTED, **late}

    # Reading every event again adds nothing.
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE state_watermarks SET absorbed_snapshot = NULL"))
    _materialize(db_url, "2025-05-01", "2025-06-01")
    assert _rows(engine) == {**EXPECTED, **late}

    # All months: February now has u1 active and paying, April 35.
    result = _materialize(db_url, "2025-01-01", "2025-06-01")
    assert all(c.passed for c in result.get_asset_check_evaluations() if c.check_name != NO_MALFORMED_EVENTS_CHECK)
    assert _rows(engine) == {
        **EXPECTED,
        **late,
        (JAN, 1): (2, 1, D("50.00"), D("10.00"), D("5.00")),
        (JAN, 2): (2, 1, D("50.00"), D("0.00"), D("5.00")),
        (JAN, 3): (2, 1, D("50.00"), D("35.00"), D("22.50")),
    }


def test_rerun_and_reabsorbing_change_nothing(db_url, engine):
    insert_events(engine, EVENTS)
    _materialize(db_url, "2025-01-01", "2025-06-01")
    first = table_rows(engine, "user_cohorts", "id")
    state_rows = table_rows(engine, "user_activity_months", "tenant_id, user_id, activity_month")
    _materialize(db_url, "2025-01-01", "2025-06-01")
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE state_watermarks SET absorbed_snapshot = NULL"))
    _materialize(db_url, "2025-03-01", "2025-06-01")
    assert table_rows(engine, "user_cohorts", "id") == first
    assert table_rows(engine, "user_activity_months", "tenant_id, user_id, activity_month") == state_rows


def test_state_assets_alone_then_aggregate(db_url, engine):
    insert_events(engine, EVENTS)
    resources = pipeline_resources(db_url)
    assert dg.materialize([user_signups, user_activity_months], resources=resources).success
    with engine.connect() as conn:
        signups = conn.execute(sa.text("SELECT user_id, cohort_month FROM user_signups ORDER BY 1")).all()
        revenue = conn.execute(
            sa.text("SELECT user_id, activity_month, revenue FROM user_activity_months WHERE revenue > 0 ORDER BY 1")
        ).all()
    assert signups == [("u1", JAN), ("u2", JAN), ("u3", FEB)]
    assert revenue == [("u2", dt.date(2025, 4, 1), Decimal("30.00")), ("u3", FEB, Decimal("20"))]
    _materialize(db_url, "2025-01-01", "2025-06-01")
    assert _rows(engine) == EXPECTED
    assert {"user_signups", "user_activity_months"} <= set(declared_state_names())


def test_two_overlapping_runs_at_once_leave_one_runs_rows(db_url, engine):
    insert_events(engine, EVENTS)
    outcomes = [
        r if isinstance(r, Exception) else r.success
        for r in run_concurrently(
            lambda first, last: _materialize(db_url, first, last),
            ("2025-01-01", "2025-04-01"),
            ("2025-03-01", "2025-06-01"),
        )
    ]
    assert outcomes == [True, True]
    assert _rows(engine) == EXPECTED


def test_purge_then_recompute_keeps_old_cohorts(db_url, engine):
    insert_events(engine, EVENTS)
    _materialize(db_url, "2025-01-01", "2025-06-01")
    before = table_rows(engine, "user_cohorts", "id")

    # Retention purges January to March: every signup and u3's payment are gone.
    cutoff = dt.datetime(2025, 4, 1)
    with engine.begin() as conn:
        conn.execute(sa.text('DELETE FROM analytics_events WHERE "timestamp" < :c'), {"c": cutoff})

    # Every month is recomputed, the purged ones too, from state: the same rows.
    result = _materialize(db_url, "2025-01-01", "2025-06-01")
    assert result.get_asset_materialization_events()[0].materialization.metadata["window"].text == "2025-01..2025-06"
    assert table_rows(engine, "user_cohorts", "id") == before


def test_late_earlier_signup_moves_a_user_to_an_older_cohort(db_url, engine):
    insert_events(engine, EVENTS)
    _materialize(db_url, "2025-01-01", "2025-03-01")
    # u3's first signup (in January) arrives late: u3 leaves February's cohort for January's.
    insert_events(engine, [event("user_signup", "2025-01-30 10:00", "u3")])
    _materialize(db_url, "2025-01-01", "2025-03-01")
    rows = _rows(engine)
    assert rows[(JAN, 0)][:2] == (3, 3)
    assert rows[(JAN, 1)] == (3, 1, D("33.33"), D("20.00"), D("6.67"))  # u3 paid 20 in February
    assert not any(cohort == FEB for cohort, _ in rows)


def test_daily_schedule_requests_the_running_month_and_the_two_before():
    context = dg.build_schedule_context(
        scheduled_execution_time=dt.datetime(2025, 3, 10, 2, 30, tzinfo=dt.UTC)
    )
    request = user_cohorts_daily(context)
    assert request.tags == range_tags("2025-01-01", "2025-03-01")
    assert user_cohorts_daily.cron_schedule == "30 2 * * *"
