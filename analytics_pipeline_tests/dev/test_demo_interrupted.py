"""A first start of `analytics-pipeline dev` interrupted (Ctrl-C, SIGTERM, SIGHUP) while it loads the
demo or before its backfill is done leaves no partial demo that the next start takes as loaded:
the load is one transaction, and a mark written in it says that the first start is yet to be made,
reset once every partition of the backfill is materialized by a run that succeeded. The next start
loads the whole demo, or makes the first start of the demo loaded before, launching the backfill of
the partitions still to make; either way the events, and the aggregates over them, are those of a
start never interrupted, nothing twice.

The interruption is the KeyboardInterrupt that dev's signal handler raises
(dev/shutdown.py StopRequest.interrupt), raised here in-process at the chosen stage."""

from __future__ import annotations

import datetime as dt
import uuid

import dagster as dg
import pytest
import sqlalchemy as sa

from analytics_pipeline.core import db
from analytics_pipeline.dev import demo, generator, stack
from analytics_pipeline.revenue.assets import revenue_aggregates, subscription_history
from analytics_pipeline.tournaments.assets import tournament_aggregates, tournament_history

from ..conftest import _create_database, _drop_database
from ..helpers import materialize_range, pipeline_resources
from .test_generator import _catalog

# A small demo over a fixed range, with malformed and late events as the real one has.
DEMO = generator.SeedOptions(tenants=3, users_per_tenant=25, start=dt.date(2025, 1, 1), end=dt.date(2025, 3, 1),
                             seed=2025, malformed_rate=0.01, late_rate=0.05)
USERS_ORGANIZATION = "acme"  # a developer's own organization, without events: never the demo's


@pytest.fixture
def clean_db_url(server_url: str, template_database: str):
    """A second database migrated to head, for the first start never interrupted."""
    name = f"ap_test_{uuid.uuid4().hex[:16]}"
    yield _create_database(server_url, name, template=template_database)
    _drop_database(server_url, name)


@pytest.fixture(autouse=True)
def small_demo(monkeypatch):
    monkeypatch.setattr(generator, "demo_options", lambda: DEMO)


def _interrupt_copy_of_tenant(monkeypatch, index: int, after_events: int) -> None:
    """Ctrl-C while the events of tenant `index` stream into COPY, after `after_events` of them."""
    real = generator.event_writer

    def event_writer(tenant, *args, **kwargs):
        emit, written = real(tenant, *args, **kwargs)

        def interrupted(*event) -> None:
            if tenant.index == index and written() >= after_events:
                raise KeyboardInterrupt
            emit(*event)

        return interrupted, written

    monkeypatch.setattr(generator, "event_writer", event_writer)


def _demo_rows(url: str) -> dict:
    """The demo's organizations, users and events: events per tenant and type, each table's row
    count, distinct ids and an md5 of all its rows in id order (without the id of the inserting
    transaction, which the database sets)."""
    with db.engine_for(url).connect() as conn:
        per_type = conn.execute(sa.text(
            "SELECT tenant_id, event_type, count(*) FROM analytics_events GROUP BY 1, 2 ORDER BY 1, 2")).all()
        tables = {
            table: conn.execute(sa.text(
                f"SELECT count(*), count(DISTINCT id), md5(string_agg((to_jsonb(t) - 'ingest_xid')::text, '|' ORDER BY id)) FROM {table} AS t "
                f"WHERE {'id' if table == 'organizations' else 'tenant_id'} LIKE 'org\\_%'")).one()
            for table in ("organizations", "users", "analytics_events")
        }
    return {"per_type": [tuple(r) for r in per_type], **{t: tuple(r) for t, r in tables.items()}}


def _aggregates(url: str) -> dict:
    """revenue_aggregates and tournament_aggregates over the demo's range, materialized from the
    events, without the times they were written."""
    first, last = DEMO.start.isoformat(), (DEMO.end - dt.timedelta(days=1)).isoformat()
    assert materialize_range([subscription_history, revenue_aggregates], url, first, last,
                             selection=["revenue_aggregates"]).success
    assert materialize_range([tournament_history, tournament_aggregates], url, first, last,
                             selection=["tournament_aggregates"]).success
    found = {}
    with db.engine_for(url).connect() as conn:
        for table in ("revenue_aggregates", "tournament_aggregates"):
            found[table] = conn.execute(sa.text(
                f"SELECT count(*), md5(string_agg((to_jsonb(t) - 'updated_at' - 'created_at')::text, '|' "
                f"ORDER BY (to_jsonb(t) - 'updated_at' - 'created_at')::text)) FROM {table} AS t")).one()
    assert all(count for count, _ in found.values()), found
    return {table: tuple(row) for table, row in found.items()}


def _first_start(url: str, monkeypatch, dagster_home) -> tuple[list, list[str]]:
    """What dev's first start does up to Dagster's start, the backfill's launch recorded: the
    backfills launched, and the demo reports' ids. Dagster's storage (which a resumed start reads
    for the partitions made) in `dagster_home`."""
    launched = []

    def launch_backfill(backfill):
        launched.append({key.to_user_string(): keys for key, (_, keys) in backfill.partitions.items()})
        return f"backfill-{len(launched)}"

    dagster_home.mkdir(exist_ok=True)
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    monkeypatch.setattr(demo, "launch_backfill", launch_backfill)
    monkeypatch.setattr(demo, "requested_demo_backfill", lambda: None)  # none in progress
    options, resumed = stack._demo_to_start(url)
    assert options is not None
    started = stack._start_demo_backfill(url, options, 3000, resumed)
    assert started is not None
    return launched, started[3]


def test_a_load_interrupted_during_copy_leaves_nothing_and_the_next_start_loads_the_whole_demo(
    db_url, clean_db_url, monkeypatch, tmp_path
):
    with db.engine_for(db_url).begin() as conn:
        conn.execute(sa.text("INSERT INTO organizations (id, name) VALUES (:id, 'Acme')"), {"id": USERS_ORGANIZATION})
        catalog = _catalog(conn)
    with monkeypatch.context() as interrupted:
        _interrupt_copy_of_tenant(interrupted, index=1, after_events=500)
        with pytest.raises(KeyboardInterrupt):
            stack._demo_to_start(db_url)

    # Nothing of the demo, the developer's organization kept, analytics_events' indexes and
    # constraints (dropped for the bulk load) back, and no mark of a demo.
    db.dispose(db_url)  # new sessions, which read the database's settings
    with db.engine_for(db_url).connect() as conn:
        assert conn.execute(sa.text("SELECT array_agg(id) FROM organizations")).scalar() == [USERS_ORGANIZATION]
        assert conn.execute(sa.text("SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM analytics_events)"
                                    )).scalar() == 0
        assert _catalog(conn) == catalog
    assert demo.pending_first_start(db_url) is None
    assert demo.demo_first_day(db_url) is None

    # The next start loads the whole demo and makes its first start, as one never interrupted does.
    again = _first_start(db_url, monkeypatch, tmp_path / "dagster")
    clean = _first_start(clean_db_url, monkeypatch, tmp_path / "clean")
    assert _demo_rows(db_url) == _demo_rows(clean_db_url)
    rows = _demo_rows(db_url)
    assert rows["analytics_events"][0] == rows["analytics_events"][1] > 1_000  # no event twice
    assert {tenant for tenant, _, _ in rows["per_type"]} == {f"org_2025_{i:03d}" for i in range(DEMO.tenants)}
    assert again[0] == clean[0] and len(again[0]) == 1 and len(again[1]) == len(demo.DEMO_REPORTS)
    assert demo.pending_first_start(db_url) == DEMO.start  # until the backfill is done
    assert _aggregates(db_url) == _aggregates(clean_db_url)


def test_a_start_interrupted_after_the_load_is_finished_by_the_next_one(
    db_url, clean_db_url, monkeypatch, tmp_path
):
    def interrupted(backfill):
        raise KeyboardInterrupt  # Ctrl-C while dagster-graphql launches the backfill

    monkeypatch.setattr(demo, "launch_backfill", interrupted)
    options, resumed = stack._demo_to_start(db_url)
    assert not resumed
    with pytest.raises(KeyboardInterrupt):
        stack._start_demo_backfill(db_url, options, 3000, resumed)
    loaded = _demo_rows(db_url)
    assert demo.pending_first_start(db_url) == DEMO.start

    # The next start loads nothing more, adds no second set of demo reports, and launches the
    # backfill a start never interrupted launches (no partition is made yet). Once the backfill is
    # done, the start after that is an ordinary one.
    launched, report_ids = _first_start(db_url, monkeypatch, tmp_path / "dagster")
    clean_launched, _ = _first_start(clean_db_url, monkeypatch, tmp_path / "clean")
    assert _demo_rows(db_url) == loaded == _demo_rows(clean_db_url)
    assert launched == clean_launched and len(launched) == 1
    with db.engine_for(db_url).connect() as conn:
        reports = conn.execute(sa.text("SELECT id, is_active FROM scheduled_reports ORDER BY id")).all()
    assert reports == [(report_id, False) for report_id in sorted(report_ids)]
    assert len(reports) == len(demo.DEMO_REPORTS)
    assert demo.pending_first_start(db_url) == DEMO.start
    assert stack._demo_to_start(db_url) == (DEMO, True)
    demo.first_start_made(url=db_url)
    assert stack._demo_to_start(db_url) == (None, False)


def test_a_demo_backfill_launched_before_the_interruption_is_not_launched_again(db_url, tmp_path, monkeypatch):
    """Interrupted just after dagster-graphql launched the backfill: the next start finds the
    backfill waiting for the daemon and follows it instead of launching another; the first start
    is still to be made until it is done."""
    # Dagster's storage of this test: dagster-graphql launches the backfill into it for real.
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))

    launched = []
    launch = demo.launch_backfill

    def launched_then_interrupted(backfill):
        launched.append(launch(backfill))
        raise KeyboardInterrupt

    options, resumed = stack._demo_to_start(db_url)
    with monkeypatch.context() as patched:
        patched.setattr(demo, "launch_backfill", launched_then_interrupted)
        with pytest.raises(KeyboardInterrupt):
            stack._start_demo_backfill(db_url, options, 3000, resumed)
    assert len(launched) == 1

    options, resumed = stack._demo_to_start(db_url)
    assert resumed
    monkeypatch.setattr(demo, "launch_backfill", lambda backfill: pytest.fail("launched a second backfill"))
    started = stack._start_demo_backfill(db_url, options, 3000, resumed)
    assert started[1] == launched[0]
    assert demo.pending_first_start(db_url) == DEMO.start


def test_the_next_start_launches_the_backfill_of_the_partitions_no_run_that_succeeded_made(
    db_url, tmp_path, monkeypatch
):
    """A first start stopped while its backfill ran (the runs cancelled, one of them after a
    step), or whose backfill failed: the next start launches the backfill of the partitions that
    no run which succeeded has materialized, as ranges of consecutive partitions, and of nothing
    else; the states made by a run that succeeded are not counted as missing."""
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    options, _ = stack._demo_to_start(db_url)
    backfill = demo.demo_backfill(options.start)
    revenue, tournaments = dg.AssetKey("revenue_aggregates"), dg.AssetKey("tournament_aggregates")
    partitions_def, days = backfill.partitions[revenue]
    assert days[0] == DEMO.start.isoformat() and len(days) > 40

    # Days 0-9 by a run that succeeded, 10-14 by one cancelled after its step, 15-19 again by one
    # that succeeded; tournament_aggregates' first 5 days by one that succeeded.
    with dg.DagsterInstance.get() as instance:
        def run(assets, first, last):
            result = materialize_range(assets, db_url, days[first], days[last], instance=instance,
                                       selection=[assets[-1].key])
            assert result.success
            return result.dagster_run

        run([subscription_history, revenue_aggregates], 0, 9)
        cancelled = run([subscription_history, revenue_aggregates], 10, 14)
        instance.report_run_canceled(cancelled, message="stopped")
        run([subscription_history, revenue_aggregates], 15, 19)
        run([tournament_history, tournament_aggregates], 0, 4)
        assert instance.get_run_by_id(cancelled.run_id).status == dg.DagsterRunStatus.CANCELED
        # A state, subscription_history, by a run that succeeded.
        assert dg.materialize([subscription_history], instance=instance, resources=pipeline_resources(db_url)).success

        todo = demo.partitions_to_make(instance, backfill)
    assert todo.partitions[revenue][1] == days[10:15] + days[20:]
    assert demo._ranges(partitions_def, todo.partitions[revenue][1]) == [
        {"start": days[10], "end": days[14]}, {"start": days[20], "end": days[-1]},
    ]
    assert todo.partitions[tournaments][1] == backfill.partitions[tournaments][1][5:]
    others = set(backfill.partitions) - {revenue, tournaments}
    assert {key: todo.partitions[key][1] for key in others} == {key: backfill.partitions[key][1] for key in others}
    assert subscription_history.key in backfill.states
    assert todo.states == [key for key in backfill.states if key != subscription_history.key]

    # The next start launches that backfill, and only it.
    launched = []
    monkeypatch.setattr(demo, "launch_backfill", lambda b: launched.append(b) or "backfill-1")
    monkeypatch.setattr(demo, "requested_demo_backfill", lambda: None)
    options, resumed = stack._demo_to_start(db_url)
    assert resumed
    started = stack._start_demo_backfill(db_url, options, 3000, resumed)
    assert started[1] == "backfill-1" and started[2] == backfill
    assert [{k: keys for k, (_, keys) in b.partitions.items()} for b in launched] == [
        {k: keys for k, (_, keys) in todo.partitions.items()}
    ]
