"""Every aggregate is computed from derived state, so no partition is ever skipped and no purge
loses a number: retention waits for every state the domains declare, from every entry point;
old history is aggregated like new; late events reach user_cohorts too.

Expected values are worked out by hand from the few events each test writes.
"""

import datetime as dt
import json
import os
import subprocess
import sys
from decimal import Decimal

import dagster as dg
import pytest
import sqlalchemy as sa

from analytics_pipeline.aggregation import checks
from analytics_pipeline.aggregation import state
from analytics_pipeline.aggregation.new_events import new_events_sensor, partitions_end
from analytics_pipeline.domains import touched_partitions
from analytics_pipeline.cohorts.assets import touched_cohort_months, user_activity_months, user_cohorts, user_signups
from analytics_pipeline.core.cache_versions import CacheInvalidation
from analytics_pipeline.core.months import add_months, month_start
from analytics_pipeline.core.resources import pipeline_resources
from analytics_pipeline.core.settings import PROJECT_DIR
from analytics_pipeline.core.sql import sql_loader
from analytics_pipeline.definitions import defs
from analytics_pipeline.revenue.assets import customer_sources, payment_history, revenue_aggregates, subscription_history
from analytics_pipeline.tournaments.assets import tournament_aggregates, tournament_history

from ..helpers import add_event, db_now, materialize_range, no_older_transaction_in_flight, rows

STATE_ASSETS = [subscription_history, payment_history, tournament_history, user_signups, user_activity_months]


def _cli(db_url: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    """`analytics-pipeline ...` in a fresh interpreter, as an operator runs it."""
    environment = {**os.environ, "DATABASE_URL": db_url, **env}
    if "ANALYTICS_RETENTION_MONTHS" not in env:
        environment.pop("ANALYTICS_RETENTION_MONTHS", None)
    return subprocess.run(
        [sys.executable, "-c", "from analytics_pipeline.cli import main; main()", *args],
        capture_output=True, text=True, timeout=300, env=environment, cwd=PROJECT_DIR,
    )


def _events(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM analytics_events")).scalar_one()


def _resources(db_url: str) -> dict:
    return pipeline_resources(db_url)


def _day_row(engine, day: dt.date, period_type: str = "day") -> dict | None:
    with engine.connect() as conn:
        found = rows(conn, "SELECT mrr, total_revenue, payment_count, refund_amount FROM revenue_aggregates "
                           "WHERE tenant_id = 't1' AND period_type = :p AND period_start = :d", p=period_type, d=day)
    return found[0] if found else None


def test_the_retention_entry_point_alone_sees_exactly_the_states_of_the_definitions():
    probe = (
        "import json, sys\n"
        "from analytics_pipeline import retention\n"
        "print(json.dumps({'states': sorted(retention.states_to_wait_for()),\n"
        "                  'definitions_imported': 'analytics_pipeline.definitions' in sys.modules}))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=PROJECT_DIR)
    assert result.returncode == 0, result.stderr[-2000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])

    graph = defs.resolve_asset_graph()
    state_assets = {
        key.to_user_string() for key in graph.get_all_asset_keys() if graph.get(key).group_name == "state"
    }
    assert seen == {"states": sorted(state_assets), "definitions_imported": False}
    assert state_assets == {
        "subscription_history", "payment_history", "customer_sources", "tournament_history", "user_signups",
        "user_activity_months",
    }


def test_retention_command_waits_for_the_states_it_never_imports_and_mrr_survives(engine, db_url):
    now = db_now(engine)
    old = now - dt.timedelta(days=460)  # about 15 months: expired under the 13-month policy
    with engine.begin() as conn:
        add_event(conn, "t1", "user_signup", old, "c1", created_at=old)
        add_event(conn, "t1", "subscription_started", old, "c1", created_at=old,
                  subscription_id="s1", plan_id="p", amount=30, interval="month")
        add_event(conn, "t1", "payment_completed", old, "c1", created_at=old, payment_id="p1", amount=30)
    # The states' absorbs below are not held below the events by another test's transaction.
    no_older_transaction_in_flight(engine)
    # Only the states the command used to know about.
    assert dg.materialize([tournament_history, user_signups, user_activity_months], resources=_resources(db_url)).success

    refused = _cli(db_url, "retention", "run")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "subscription_history (never materialized)" in refused.stdout + refused.stderr
    assert "payment_history (never materialized)" in refused.stdout + refused.stderr
    assert "customer_sources (never materialized)" in refused.stdout + refused.stderr
    assert _events(engine) == 3

    assert dg.materialize(
        [subscription_history, payment_history, customer_sources], resources=_resources(db_url)
    ).success
    purged = _cli(db_url, "retention", "run")
    assert purged.returncode == 0, purged.stdout + purged.stderr
    assert _events(engine) == 0

    today = now.date()
    assert materialize_range([revenue_aggregates], db_url, str(old.date()), str(today)).success
    assert _day_row(engine, old.date()) == {"mrr": 30, "total_revenue": 30, "payment_count": 1, "refund_amount": 0}
    assert _day_row(engine, today)["mrr"] == 30


def test_a_shorter_retention_run_leaves_past_revenue_recomputable(engine, db_url):
    now = db_now(engine)
    day = (now - dt.timedelta(days=240)).date()  # about 8 months ago: expired under --months 6
    at = dt.datetime.combine(day, dt.time(10))
    with engine.begin() as conn:
        add_event(conn, "t1", "subscription_started", at, "c1", created_at=at,
                  subscription_id="s1", plan_id="p", amount=20, interval="month")
        add_event(conn, "t1", "payment_completed", at, "c1", created_at=at, payment_id="p1", amount=40)
        add_event(conn, "t1", "payment_completed", at, "c2", created_at=at, payment_id="p2", amount="10.50")
        add_event(conn, "t1", "payment_failed", at, "c2", created_at=at, payment_id="p3", amount=5)
        add_event(conn, "t1", "payment_refunded", at, "c1", created_at=at, payment_id="p1", amount=4)
    expected = {"mrr": 20, "total_revenue": Decimal("50.50"), "payment_count": 3, "refund_amount": 4}
    no_older_transaction_in_flight(engine)  # as above
    assert dg.materialize(STATE_ASSETS, resources=_resources(db_url)).success
    assert materialize_range([revenue_aggregates], db_url, str(day), str(day)).success
    assert _day_row(engine, day) == expected
    quarter = _day_row(engine, dt.date(day.year, (day.month - 1) // 3 * 3 + 1, 1), "quarter")

    purged = _cli(db_url, "retention", "run", "--months", "6", ANALYTICS_RETENTION_MONTHS="13")
    assert purged.returncode == 0, purged.stdout + purged.stderr
    assert _events(engine) == 0

    assert materialize_range([revenue_aggregates], db_url, str(day), str(day)).success
    assert _day_row(engine, day) == expected
    assert _day_row(engine, dt.date(day.year, (day.month - 1) // 3 * 3 + 1, 1), "quarter") == quarter


def test_history_older_than_the_retention_cutoff_is_aggregated(engine, db_url):
    now = db_now(engine)
    month = add_months(month_start(now.date()), -20)  # long before the 13-month cutoff
    at = dt.datetime.combine(month + dt.timedelta(days=4), dt.time(9))
    with engine.begin() as conn:
        add_event(conn, "t1", "user_signup", at, "c1")
        add_event(conn, "t1", "subscription_started", at, "c1", subscription_id="s1", plan_id="p",
                  amount=12, interval="month")
        add_event(conn, "t1", "payment_completed", at, "c1", payment_id="p1", amount=12)
        add_event(conn, "t1", "tournament_created", at, "c1", tournament_id="T", format="swiss")
        add_event(conn, "t1", "player_registered", at, "c1", tournament_id="T")
    last_day = add_months(month, 1) - dt.timedelta(days=1)

    revenue = materialize_range([revenue_aggregates], db_url, str(month), str(last_day))
    tournaments = materialize_range([tournament_aggregates], db_url, str(month), str(last_day))
    cohorts = materialize_range([user_cohorts], db_url, str(month), str(month))
    assert revenue.success and tournaments.success and cohorts.success

    assert _day_row(engine, at.date()) == {"mrr": 12, "total_revenue": 12, "payment_count": 1, "refund_amount": 0}
    with engine.connect() as conn:
        assert rows(conn, "SELECT tournament_count, total_players FROM tournament_aggregates "
                          "WHERE period_type = 'month' AND period_start = :m", m=month) == [
            {"tournament_count": 1, "total_players": 1}]
        assert rows(conn, "SELECT month_number, cohort_size, retained_users, revenue FROM user_cohorts") == [
            {"month_number": 0, "cohort_size": 1, "retained_users": 1, "revenue": 12}]


def test_a_window_without_inputs_writes_no_rows_and_says_so(engine, db_url):
    with engine.begin() as conn:
        add_event(conn, "t1", "payment_completed", "2025-03-10 10:00", "c1", payment_id="p1", amount=5)
    result = materialize_range([revenue_aggregates], db_url, "2025-01-01", "2025-01-31")
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["rows_written"].value == 0
    assert metadata["no_rows"].text == "no subscriptions, payments or refunds in 2025-01-01..2025-02-01: no rows written"
    assert _day_row(engine, dt.date(2025, 3, 10)) is None  # outside the window: not written either
    assert metadata["partitions_without_rows"].value == 31

    # A range with one day of payments names the days around it that had none.
    result = materialize_range([revenue_aggregates], db_url, "2025-03-09", "2025-03-11")
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["partitions_without_rows"].value == 2
    assert metadata["partitions_without_rows_examples"].value == ["2025-03-09", "2025-03-11"]
    assert "no_rows" not in metadata


def test_the_cache_hears_of_the_tenants_whose_rows_changed_once_they_are_visible(engine, db_url, monkeypatch):
    with engine.begin() as conn:
        add_event(conn, "t1", "payment_completed", "2025-03-10 10:00", "c1", payment_id="p1", amount=5)
        add_event(conn, "t2", "payment_completed", "2025-03-10 11:00", "c2", payment_id="p2", amount=7)
        add_event(conn, "t3", "payment_completed", "2025-03-20 11:00", "c3", payment_id="p3", amount=9)
    calls = []

    def recording(cache, aggregate, tenant_ids, log=None):
        # Another connection sees the rows: the run's transaction has committed.
        with engine.connect() as conn:
            visible = conn.execute(sa.text(
                "SELECT count(*) FROM revenue_aggregates WHERE period_type = 'day'")).scalar_one()
        calls.append((aggregate, set(tenant_ids), visible))

    monkeypatch.setattr(CacheInvalidation, "rows_changed", recording)
    result = materialize_range([revenue_aggregates], db_url, "2025-03-10", "2025-03-10")
    assert calls == [("revenue_aggregates", {"t1", "t2"}, 2)]
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["tenants_changed"].value == 2

    # t2's payment was wrong and is gone from the history: its rows are deleted, t2 changed; t1's
    # rows are written again with the same values: unchanged, its cache stays.
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM payment_events WHERE tenant_id = 't2'"))
        conn.execute(sa.text("DELETE FROM analytics_events WHERE tenant_id = 't2'"))
    materialize_range([revenue_aggregates], db_url, "2025-03-10", "2025-03-10")
    assert calls[-1] == ("revenue_aggregates", {"t2"}, 1)


def test_a_check_without_its_sql_file_fails_at_import():
    load = sql_loader("analytics_pipeline.revenue")
    with pytest.raises(FileNotFoundError, match="no_such_check.sql"):
        checks.rule_checks(load, {"no_such_check": "renamed on one side only"})


# --- late data reaches user_cohorts ---------------------------------------------------------------


def _tick(db_url, cursor: str | None = None):
    """One evaluation of the new-events sensor (no run of it in flight); the first one, without a
    cursor, only records where it starts following the commits."""
    context = dg.build_sensor_context(
        cursor=cursor, instance=dg.DagsterInstance.ephemeral(), resources=_resources(db_url)
    )
    return new_events_sensor(touched_partitions())(context)


def _cohort_requests(result) -> list[tuple[str, str, str]]:
    return sorted(
        (r.job_name, r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"])
        for r in result.run_requests
        if r.asset_selection == [dg.AssetKey("user_cohorts")]
    )


def test_late_events_request_the_user_cohorts_months_they_change(engine, db_url):
    now = db_now(engine)
    this_month = month_start(now.date())
    m0 = add_months(this_month, -12)
    # After every event's time (the contract refuses an event timestamped more than a day after
    # its created_at).
    long_ago = now - dt.timedelta(hours=2)
    with engine.begin() as conn:
        add_event(conn, "t1", "user_signup", dt.datetime.combine(m0, dt.time(9)), "c1", created_at=long_ago)
        add_event(conn, "t1", "user_signup", dt.datetime.combine(add_months(m0, 4), dt.time(9)), "c2",
                  created_at=long_ago)
    assert materialize_range([user_cohorts], db_url, str(m0), str(this_month)).success
    first = _tick(db_url)
    assert not first.run_requests

    # Committed after the sensor's first tick, with the same created_at as the events before it:
    # the commit, not created_at, makes them new.
    with engine.begin() as conn:
        # Activity only: its own month.
        add_event(conn, "t1", "page_view", dt.datetime.combine(add_months(m0, 6), dt.time(9)), "c1",
                  created_at=long_ago, page="/")
        # A payment: its month and every later one (ltv), through the running month.
        add_event(conn, "t1", "payment_completed", dt.datetime.combine(add_months(m0, 8), dt.time(9)), "c1",
                  created_at=long_ago, payment_id="p1", amount=25)
    with engine.connect() as conn:
        since = json.loads(first.cursor)["user_cohorts"]
        committed = state.Committed((since,), state.current_snapshot(conn))
        touched = touched_cohort_months(conn, committed, partitions_end("month", now.date()))
    assert touched == {add_months(m0, 6)} | {add_months(m0, n) for n in range(8, 13)}
    result = _tick(db_url, first.cursor)
    # One run over the months they change, first to last.
    assert _cohort_requests(result) == [("user_cohorts_job", str(add_months(m0, 6)), str(this_month))]
    assert materialize_range([user_cohorts], db_url, str(add_months(m0, 6)), str(this_month)).success
    with engine.connect() as conn:
        found = rows(conn, "SELECT month_number, retained_users, revenue, ltv FROM user_cohorts "
                           "WHERE cohort_month = :m AND month_number IN (6, 8, 9) ORDER BY month_number", m=m0)
    assert found == [
        {"month_number": 6, "retained_users": 1, "revenue": 0, "ltv": 0},
        {"month_number": 8, "retained_users": 1, "revenue": 25, "ltv": 25},
        {"month_number": 9, "retained_users": 0, "revenue": 0, "ltv": 25},
    ]


def test_a_late_earlier_signup_requests_every_month_from_the_new_cohort_on(engine, db_url):
    now = db_now(engine)
    this_month = month_start(now.date())
    m0 = add_months(this_month, -12)
    # After every event's time (the contract refuses an event timestamped more than a day after
    # its created_at).
    long_ago = now - dt.timedelta(hours=2)
    with engine.begin() as conn:
        add_event(conn, "t1", "user_signup", dt.datetime.combine(add_months(m0, 4), dt.time(9)), "c2",
                  created_at=long_ago)
    assert materialize_range([user_cohorts], db_url, str(m0), str(this_month)).success
    first = _tick(db_url)
    assert not first.run_requests

    # Committed after the first tick, backdated like the signup before it.
    with engine.begin() as conn:
        add_event(conn, "t1", "user_signup", dt.datetime.combine(add_months(m0, 1), dt.time(9)), "c2",
                  created_at=long_ago)
    result = _tick(db_url, first.cursor)
    assert _cohort_requests(result) == [("user_cohorts_job", str(add_months(m0, 1)), str(this_month))]
    assert materialize_range([user_cohorts], db_url, str(add_months(m0, 1)), str(this_month)).success
    with engine.connect() as conn:
        sizes = rows(conn, "SELECT cohort_month, min(cohort_size) AS size, count(*) AS months FROM user_cohorts "
                           "GROUP BY cohort_month ORDER BY cohort_month")
    # c2 moved from cohort m0+4 to m0+1: the old cohort's rows are gone, the new one has all its
    # months, m0+1 through the running month.
    assert sizes == [{"cohort_month": add_months(m0, 1), "size": 1, "months": 12}]


@pytest.mark.slow
def test_dagster_cli_materializes_the_oldest_cohort_month_past_the_cutoff(engine, db_url, tmp_path):
    """`dagster asset materialize` on a month older than the retention cutoff writes its month-0 row."""
    month = add_months(month_start(db_now(engine).date()), -20)
    with engine.begin() as conn:
        add_event(conn, "t1", "user_signup", dt.datetime.combine(month, dt.time(9)), "c1")
        add_event(conn, "t1", "user_signup", dt.datetime.combine(month, dt.time(10)), "c2")
    env = {**os.environ, "DATABASE_URL": db_url, "DAGSTER_HOME": str(tmp_path)}
    env.pop("ANALYTICS_RETENTION_MONTHS", None)
    result = subprocess.run(
        [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "analytics_pipeline.definitions",
         "--select", "user_cohorts", "--partition", str(month)],
        capture_output=True, text=True, timeout=300, env=env, cwd=PROJECT_DIR,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with engine.connect() as conn:
        assert rows(conn, "SELECT cohort_month, month_number, cohort_size, retained_users FROM user_cohorts") == [
            {"cohort_month": month, "month_number": 0, "cohort_size": 2, "retained_users": 2}]
