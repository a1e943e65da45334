"""Freshness: every run of an aggregate records its time in `aggregate_freshness` inside its
transaction; the API returns it with the aggregate's data (`data_updated_at`, `data_stale_after`,
`X-Data-Updated-At`, `X-Data-Stale-After`), cached or not, never more than a few seconds behind;
and the three aggregate assets carry Dagster freshness policies tied to their schedules."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time

import dagster as dg
import pytest
import sqlalchemy as sa

from analytics_pipeline.aggregation.schedules import hourly_aggregates_schedule
from analytics_pipeline.api.freshness import MAX_AGE_SECONDS
from analytics_pipeline.cohorts.schedules import user_cohorts_daily
from analytics_pipeline.core.cache_versions import CacheInvalidation
from analytics_pipeline.definitions import defs
from analytics_pipeline.domains import aggregate_freshness
from analytics_pipeline.revenue import assets as revenue_assets
from analytics_pipeline.revenue.assets import revenue_aggregates

from ..api_support import api_env, auth, client, redis_prefix, redis_server_url
from ..helpers import add_event, db_now, materialize_range

AGGREGATES = ("revenue_aggregates", "revenue_segments", "tournament_aggregates", "user_cohorts", "user_cohort_segments")


@pytest.fixture(autouse=True)
def keep_raw_events_forever(monkeypatch):
    # The hand-built events lie in 2025; keep them inside the retention window.
    monkeypatch.setenv("ANALYTICS_RETENTION_MONTHS", "240")


def _materialized_at(engine, aggregate="revenue_aggregates"):
    with engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT materialized_at FROM aggregate_freshness WHERE aggregate = :a"), {"a": aggregate}
        ).scalar()


def _run_revenue(db_url) -> int:
    result = materialize_range([revenue_aggregates], db_url, "2025-05-10", "2025-05-10")
    assert result.success
    return result.get_asset_materialization_events()[0].materialization.metadata["tenants_changed"].value


def _iso(value: dt.datetime) -> str:
    return value.replace(microsecond=0).isoformat() + "Z"


def test_every_run_records_its_time_in_its_transaction(engine, db_url, monkeypatch):
    with engine.begin() as conn:
        add_event(conn, "acme", "payment_completed", "2025-05-10 10:00", "c1", payment_id="p1", amount=5)
    seen_after_commit = []

    def recording(cache, aggregate, tenant_ids, log=None):
        # Another connection sees the time: it committed with the rows.
        seen_after_commit.append(_materialized_at(engine, aggregate))

    monkeypatch.setattr(CacheInvalidation, "rows_changed", recording)
    assert _materialized_at(engine) is None
    before = db_now(engine)
    assert _run_revenue(db_url) == 1
    first = _materialized_at(engine)
    assert before <= first <= db_now(engine)
    assert seen_after_commit == [first]

    # A run that changed no tenant's rows still moves it forward.
    assert _run_revenue(db_url) == 0
    assert _materialized_at(engine) > first

    # A run that fails leaves it as it was: it is written in the run's transaction.
    second = _materialized_at(engine)

    def failing_write(conn, params):
        raise RuntimeError("the write failed")

    monkeypatch.setattr(revenue_assets, "REVENUE_AGGREGATE",
                        dataclasses.replace(revenue_assets.REVENUE_AGGREGATE, write=failing_write))
    result = materialize_range([revenue_aggregates], db_url, "2025-05-10", "2025-05-10", raise_on_error=False)
    assert not result.success
    assert _materialized_at(engine) == second


def test_the_api_returns_when_the_data_was_materialized_cached_or_not(client, engine, db_url):
    with engine.begin() as conn:
        add_event(conn, "acme", "payment_completed", "2025-05-10 10:00", "c1", payment_id="p1", amount=5)
    _run_revenue(db_url)
    first = _materialized_at(engine)
    stale_after = first + aggregate_freshness()["revenue_aggregates"].warn
    path = "/v1/revenue?period_type=day&from=2025-05-10&to=2025-05-10"

    response = client.get(path, headers=auth("acme"))
    assert response.headers["x-cache"] == "miss"
    body = response.json()
    assert body["rows"][0]["total_revenue"] == 5
    assert (body["data_updated_at"], body["data_stale_after"]) == (_iso(first), _iso(stale_after))
    assert response.headers["x-data-updated-at"] == _iso(first)
    assert response.headers["x-data-stale-after"] == _iso(stale_after)
    hit = client.get(path, headers=auth("acme"))
    assert hit.headers["x-cache"] == "hit"
    assert hit.json() == body

    # Every revenue endpoint carries it; CSV in the headers; the reports have none.
    for other in ("/v1/kpis?period_type=month&day=2025-05-10", "/v1/revenue/bridge?from=2025-05-01&to=2025-05-31"):
        assert client.get(other, headers=auth("acme")).json()["data_updated_at"] == _iso(first), other
    csv = client.get(path + "&format=csv", headers=auth("acme"))
    assert csv.headers["x-data-updated-at"] == _iso(first)
    assert "data_updated_at" not in csv.text
    reports = client.get("/v1/reports", headers=auth("acme"))
    assert "x-data-updated-at" not in reports.headers and "data_updated_at" not in reports.json()

    # A run that changed nothing keeps the cached entry (no version moved), and the time it returns
    # moves forward within a few seconds.
    time.sleep(1.1)  # the times are given to the second
    assert _run_revenue(db_url) == 0
    second = _materialized_at(engine)
    deadline = time.monotonic() + MAX_AGE_SECONDS + 1
    while True:
        again = client.get(path, headers=auth("acme"))
        assert again.headers["x-cache"] == "hit"
        if again.json()["data_updated_at"] == _iso(second):
            break
        assert time.monotonic() < deadline, "the API still returns the previous run's time"
        assert again.json()["data_updated_at"] == _iso(first)
        time.sleep(0.2)
    assert again.headers["x-data-updated-at"] == _iso(second)
    assert again.json()["rows"] == body["rows"]


def test_an_aggregate_never_materialized_has_no_time(client, engine):
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO organizations (id, name) VALUES ('acme', 'Acme')"))
        conn.execute(sa.text(
            "INSERT INTO aggregate_freshness VALUES ('revenue_aggregates', timezone('utc', now()))"))
    response = client.get("/v1/cohorts?from=2025-01&to=2025-03", headers=auth("acme"))
    assert response.status_code == 200
    assert (response.json()["data_updated_at"], response.json()["data_stale_after"]) == (None, None)
    assert "x-data-updated-at" not in response.headers
    # Another aggregate's time is not this one's.
    revenue = client.get("/v1/revenue?period_type=month&from=2025-01-01&to=2025-03-31", headers=auth("acme"))
    assert revenue.json()["data_updated_at"] is not None


# --- Dagster freshness policies -----------------------------------------------------------------


def test_the_aggregates_carry_freshness_policies_tied_to_their_schedules():
    specs = {spec.key.to_user_string(): spec for spec in defs.resolve_all_asset_specs()}
    for aggregate in AGGREGATES:
        windows = aggregate_freshness()[aggregate]
        assert specs[aggregate].freshness_policy == dg.FreshnessPolicy.time_window(
            fail_window=windows.fail, warn_window=windows.warn
        ), aggregate
    # With no new events the event-driven sensor launches nothing: only the schedules guarantee a
    # materialization, so no window may end before the schedule's next run could have landed.
    assert hourly_aggregates_schedule.cron_schedule == "5 * * * *"
    hourly = {key.to_user_string() for key in defs.resolve_job_def("hourly_aggregates_job").asset_layer.executable_asset_keys}
    assert hourly == {"revenue_aggregates", "revenue_segments", "tournament_aggregates"}
    assert set(aggregate_freshness()) == set(AGGREGATES)
    for aggregate in hourly:
        assert dt.timedelta(hours=1) < aggregate_freshness()[aggregate].warn < aggregate_freshness()[aggregate].fail
    assert user_cohorts_daily.cron_schedule == "30 2 * * *"
    assert dt.timedelta(days=1) < aggregate_freshness()["user_cohorts"].warn < aggregate_freshness()["user_cohorts"].fail
    # No other asset has one.
    assert {key for key, spec in specs.items() if spec.freshness_policy is not None} == set(AGGREGATES)
