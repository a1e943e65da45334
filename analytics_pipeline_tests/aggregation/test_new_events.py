"""Every committed event reaches the aggregates through the new-events sensor, whatever its
created_at or timestamp: the sensor's requests are executed as the daemon would launch them."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid

import dagster as dg
import pytest
import sqlalchemy as sa

from analytics_pipeline.aggregation.new_events import NEW_EVENTS_TAG, new_events_sensor
from analytics_pipeline.domains import touched_partitions
from analytics_pipeline.api.freshness import MAX_AGE_SECONDS
from analytics_pipeline.core.resources import pipeline_resources
from analytics_pipeline.definitions import defs

from ..api_support import api_env, auth, client, redis_prefix, redis_server_url
from ..helpers import add_event, add_tenant, rows

AGGREGATES = ("revenue_aggregates", "revenue_segments", "tournament_aggregates", "user_cohorts")


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


@pytest.fixture
def pipeline(db_url, monkeypatch):
    # The jobs' own resources read DATABASE_URL, as they do in a deployment.
    monkeypatch.setenv("DATABASE_URL", db_url)
    return db_url


def tick(db_url, instance, cursor):
    context = dg.build_sensor_context(
        cursor=cursor, instance=instance, resources=pipeline_resources(db_url)
    )
    return new_events_sensor(touched_partitions())(context)


def launch(instance, requests) -> None:
    """Run each request as the daemon would: its job, asset selection and partition range tags."""
    for request in requests:
        job = defs.resolve_job_def(request.job_name)
        result = job.execute_in_process(
            instance=instance, tags=request.tags, asset_selection=request.asset_selection
        )
        assert result.success


def ranges(result) -> set[tuple[str, str, str]]:
    return {
        (r.asset_selection[0].path[-1], r.tags["dagster/asset_partition_range_start"],
         r.tags["dagster/asset_partition_range_end"])
        for r in result.run_requests
    }


def today(engine) -> dt.date:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT CAST(now() AT TIME ZONE 'UTC' AS date)")).scalar_one()


def revenue_day(engine, tenant, day) -> dict | None:
    with engine.connect() as conn:
        found = rows(conn, "SELECT mrr, total_revenue FROM revenue_aggregates WHERE tenant_id = :t "
                           "AND period_type = 'day' AND period_start = :d", t=tenant, d=day)
    return found[0] if found else None


def test_first_tick_follows_from_now_for_every_aggregate(pipeline, instance):
    result = tick(pipeline, instance, None)
    assert not result.run_requests
    assert set(json.loads(result.cursor)) == set(AGGREGATES)


def test_a_backdated_import_of_a_new_tenant_reaches_the_aggregates_through_the_sensor(pipeline, engine, instance):
    day0 = today(engine)
    with engine.begin() as conn:
        add_event(conn, "t-old", "payment_completed", f"{day0} 00:00:01", "u1", payment_id="p0", amount=3)
    first = tick(pipeline, instance, None)
    # The pipeline has run: today is materialized.
    launch(instance, [dg.RunRequest(job_name="hourly_aggregates_job", asset_selection=[dg.AssetKey("revenue_aggregates")],
                                    tags={"dagster/asset_partition_range_start": str(day0),
                                          "dagster/asset_partition_range_end": str(day0)})])
    # A tenant moves over with its history: dated and created two months back.
    started = day0 - dt.timedelta(days=61)
    old = dt.datetime.combine(started, dt.time(9))
    with engine.begin() as conn:
        add_event(conn, "t-new", "subscription_started", old, "c1", created_at=old,
                  subscription_id="s1", plan_id="pro", amount=100, interval="month")
        add_event(conn, "t-new", "payment_completed", old, "c1", created_at=old, payment_id="p1", amount=100)

    second = tick(pipeline, instance, first.cursor)
    # MRR carries forward from the start to today: one run over all those days.
    assert ("revenue_aggregates", str(started), str(day0)) in ranges(second)
    launch(instance, second.run_requests)

    assert revenue_day(engine, "t-new", started) == {"mrr": 100, "total_revenue": 100}
    assert revenue_day(engine, "t-new", day0) == {"mrr": 100, "total_revenue": 0}
    assert revenue_day(engine, "t-old", day0) == {"mrr": 0, "total_revenue": 3}
    # The run's absorb changed the segment state from the start on: revenue_segments follows it
    # (docs/metrics.md#segment-state), over the same days.
    third = tick(pipeline, instance, second.cursor)
    assert ranges(third) == {("revenue_segments", str(started), str(day0))}
    launch(instance, third.run_requests)
    # Nothing new since: nothing requested.
    assert not tick(pipeline, instance, third.cursor).run_requests


def test_a_transaction_that_commits_after_an_absorb_is_absorbed_by_the_next(pipeline, engine, instance):
    day = today(engine) - dt.timedelta(days=1)
    first = tick(pipeline, instance, None)
    two_hours_ago = dt.datetime.combine(day, dt.time(10))
    with engine.begin() as conn:
        add_tenant(conn, "t1", ["u1"])
    long_transaction = engine.connect()
    try:
        long_transaction.begin()
        # Stamped when the transaction began, two hours before it commits.
        add_event(long_transaction, "t1", "payment_completed", two_hours_ago, "u1",
                  created_at=two_hours_ago, payment_id="p777", amount=777)
        # Meanwhile another payment commits and the sensor's run absorbs and commits.
        with engine.begin() as conn:
            add_event(conn, "t1", "payment_completed", f"{day} 11:00", "u1", payment_id="p1", amount=1)
        second = tick(pipeline, instance, first.cursor)
        assert ranges(second) >= {("revenue_aggregates", str(day), str(day))}
        launch(instance, second.run_requests)
        assert revenue_day(engine, "t1", day)["total_revenue"] == 1
        long_transaction.commit()
    finally:
        long_transaction.close()

    third = tick(pipeline, instance, second.cursor)
    assert ("revenue_aggregates", str(day), str(day)) in ranges(third)
    launch(instance, third.run_requests)
    assert revenue_day(engine, "t1", day)["total_revenue"] == 778


def test_a_late_payment_alone_requests_only_its_day(pipeline, engine, instance):
    day = today(engine) - dt.timedelta(days=6)
    first = tick(pipeline, instance, None)
    with engine.begin() as conn:
        add_event(conn, "t1", "payment_refunded", f"{day} 12:00", "c1", payment_id="a", amount=5)
        add_event(conn, "t1", "page_view", f"{day} 12:00", "c1")
    result = tick(pipeline, instance, first.cursor)
    assert {r for r in ranges(result) if r[0] == "revenue_aggregates"} == {("revenue_aggregates", str(day), str(day))}
    # The page view is activity of its month for the cohorts.
    month = day.replace(day=1)
    assert ("user_cohorts", str(month), str(month)) in ranges(result)
    assert all(r.tags[NEW_EVENTS_TAG] == r.asset_selection[0].path[-1] for r in result.run_requests)
    assert len({r.run_key for r in result.run_requests}) == len(result.run_requests)


def test_a_late_completion_requests_the_day_its_tournament_belongs_to(pipeline, engine, instance):
    created = today(engine) - dt.timedelta(days=9)
    with engine.begin() as conn:
        add_event(conn, "t1", "tournament_created", f"{created} 10:00", "o1", tournament_id="T1", format="swiss")
    first = tick(pipeline, instance, None)
    with engine.begin() as conn:
        add_event(conn, "t1", "tournament_completed", f"{created + dt.timedelta(days=5)} 10:00", "o1",
                  tournament_id="T1")
    result = tick(pipeline, instance, first.cursor)
    assert {r for r in ranges(result) if r[0] == "tournament_aggregates"} == {
        ("tournament_aggregates", str(created), str(created))
    }


def _in_flight_run(instance, asset: str) -> dg.DagsterRun:
    run = dg.DagsterRun(job_name="hourly_aggregates_job", run_id=str(uuid.uuid4()),
                        status=dg.DagsterRunStatus.STARTED, tags={NEW_EVENTS_TAG: asset})
    return instance.add_run(run)


def test_one_run_per_aggregate_at_a_time_and_what_arrives_meanwhile_is_coalesced(pipeline, engine, instance):
    day0 = today(engine)
    first = tick(pipeline, instance, None)
    running = _in_flight_run(instance, "revenue_aggregates")
    with engine.begin() as conn:
        add_event(conn, "t1", "payment_completed", f"{day0 - dt.timedelta(days=3)} 10:00", "u1", payment_id="a", amount=2)
    waiting = tick(pipeline, instance, first.cursor)
    assert not {r for r in ranges(waiting) if r[0] == "revenue_aggregates"}
    # Its cursor stays: what it has not requested yet is still ahead of it.
    assert json.loads(waiting.cursor)["revenue_aggregates"] == json.loads(first.cursor)["revenue_aggregates"]
    with engine.begin() as conn:
        add_event(conn, "t1", "payment_completed", f"{day0 - dt.timedelta(days=1)} 10:00", "u1", payment_id="b", amount=3)
    still = tick(pipeline, instance, waiting.cursor)
    assert not {r for r in ranges(still) if r[0] == "revenue_aggregates"}

    instance.report_run_canceled(running)
    after = tick(pipeline, instance, still.cursor)
    revenue = [r for r in after.run_requests if r.asset_selection == [dg.AssetKey("revenue_aggregates")]]
    assert len(revenue) == 1
    assert ranges(dg.SensorResult(run_requests=revenue)) == {
        ("revenue_aggregates", str(day0 - dt.timedelta(days=3)), str(day0 - dt.timedelta(days=1)))
    }
    launch(instance, revenue)
    assert revenue_day(engine, "t1", day0 - dt.timedelta(days=3))["total_revenue"] == 2
    assert revenue_day(engine, "t1", day0 - dt.timedelta(days=1))["total_revenue"] == 3


def test_partitions_before_the_first_one_are_never_requested(pipeline, engine, instance, monkeypatch):
    start = today(engine) - dt.timedelta(days=2)
    monkeypatch.setenv("ANALYTICS_START_DATE", str(start))
    first = tick(pipeline, instance, None)
    with engine.begin() as conn:
        # A month before the first partition's month, whatever today is.
        add_event(conn, "t1", "payment_completed", f"{today(engine) - dt.timedelta(days=40)} 10:00", "u1",
                  payment_id="a", amount=2)
    # The payment's day is before the first day partition; it changes the LTV of every later
    # month of user_cohorts, of which only those from the first month partition on exist.
    first_month, this_month = start.replace(day=1), today(engine).replace(day=1)
    assert ranges(tick(pipeline, instance, first.cursor)) == {("user_cohorts", str(first_month), str(this_month))}


def test_a_committed_payment_reaches_the_api_through_the_sensor_alone(pipeline, engine, instance, client):
    """The freshness path end to end: a cached response, a payment committed, one tick of the
    sensor, its run launched, and the next request shows the payment and the run's time."""
    day = today(engine)
    path = f"/v1/revenue?period_type=day&from={day}&to={day}"
    with engine.begin() as conn:
        add_event(conn, "acme", "payment_completed", f"{day} 00:00:01", "c1", payment_id="p1", amount=5)
    first = tick(pipeline, instance, None)
    launch(instance, [dg.RunRequest(job_name="hourly_aggregates_job", asset_selection=[dg.AssetKey("revenue_aggregates")],
                                    tags={"dagster/asset_partition_range_start": str(day),
                                          "dagster/asset_partition_range_end": str(day)})])
    before = client.get(path, headers=auth("acme"))
    assert before.json()["rows"][0]["total_revenue"] == 5
    assert client.get(path, headers=auth("acme")).headers["x-cache"] == "hit"

    with engine.begin() as conn:
        add_event(conn, "acme", "payment_completed", f"{day} 00:00:02", "c1", payment_id="p2", amount=7)
    second = tick(pipeline, instance, first.cursor)
    launch(instance, [r for r in second.run_requests if r.asset_selection == [dg.AssetKey("revenue_aggregates")]])

    after = client.get(path, headers=auth("acme"))
    assert after.headers["x-cache"] == "miss"
    assert after.json()["rows"][0]["total_revenue"] == 12
    with engine.connect() as conn:
        materialized_at = conn.execute(sa.text(
            "SELECT materialized_at FROM aggregate_freshness WHERE aggregate = 'revenue_aggregates'")).scalar_one()
    # The run's time, once the API's copy of it is renewed (at most MAX_AGE_SECONDS old).
    expected = materialized_at.replace(microsecond=0).isoformat() + "Z"
    deadline = time.monotonic() + MAX_AGE_SECONDS + 1
    while client.get(path, headers=auth("acme")).json()["data_updated_at"] != expected:
        assert time.monotonic() < deadline, "the API does not return the run's time"
        time.sleep(0.2)
