"""Retention as it is operated: the sensor, the Dagster job and the `retention run` command.

These use the real cutoff (13 months before now) and place events around it. Derived state
absorbs events in commit order (analytics_pipeline/aggregation/state.py): after inserting its events, a test
has the declared states absorb them (`every_state_absorbs`), as their runs would.
"""

import datetime as dt

import dagster as dg
import sqlalchemy as sa
from click.testing import CliRunner

from analytics_pipeline.cli import main
from analytics_pipeline.domains import declared_state_names
from analytics_pipeline.retention import (
    RetentionCleanupConfig,
    retention_cleanup_job,
    retention_cleanup_sensor,
    retention_cutoff,
)
from analytics_pipeline.retention.purge import HELD_BACK_UNABSORBED

from ..helpers import absorb_everything, no_older_transaction_in_flight, set_watermark

SECOND = dt.timedelta(seconds=1)


def every_state_absorbs(engine, but: tuple[str, ...] = ()) -> None:
    """Every declared state but `but` absorbs every event committed so far."""
    absorb_everything(engine, *(name for name in declared_state_names() if name not in but))


def never_materialized(engine, name: str) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM state_watermarks WHERE state_name = :n"), {"n": name})


def _events(engine, *timestamps: dt.datetime) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO organizations (id, name) VALUES ('acme', 'Acme') ON CONFLICT DO NOTHING"))
        for i, ts in enumerate(timestamps):
            conn.execute(
                sa.text(
                    'INSERT INTO analytics_events (id, tenant_id, event_type, event_data, "timestamp", created_at) '
                    "VALUES (:id, 'acme', 'page_view', '{}', :ts, :ts)"
                ),
                {"id": f"e{i}-{ts.isoformat()}", "ts": ts},
            )


def _count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM analytics_events")).scalar()


def test_sensor_requests_one_run_per_cutoff_day_when_an_event_has_expired(engine, database):
    cutoff = retention_cutoff()
    _events(engine, cutoff, cutoff + 30 * SECOND)
    every_state_absorbs(engine)

    skipped = retention_cleanup_sensor(dg.build_sensor_context(resources={"database": database}))
    assert isinstance(skipped, dg.SkipReason)  # an event exactly at the cutoff has not expired

    _events(engine, cutoff - SECOND)
    every_state_absorbs(engine)
    request = retention_cleanup_sensor(dg.build_sensor_context(resources={"database": database}))
    assert isinstance(request, dg.RunRequest)
    assert request.run_key == cutoff.date().isoformat()
    assert request.run_config["ops"]["delete_expired_events"]["config"]["cutoff"] == cutoff.date().isoformat()


def test_sensor_waits_without_a_run_while_a_state_has_not_absorbed_the_expired_events(
    engine, database, monkeypatch
):
    never_materialized(engine, "subscription_history")
    cutoff = retention_cutoff()
    _events(engine, cutoff - SECOND)
    every_state_absorbs(engine, but=("subscription_history",))

    def tick():
        return retention_cleanup_sensor(dg.build_sensor_context(resources={"database": database}))

    waiting = tick()
    assert isinstance(waiting, dg.SkipReason)
    assert "materialize first: subscription_history (never materialized)" in waiting.skip_message

    # It absorbs, but another expired event is committed after its absorb (the other states
    # absorb that one too): still waiting, for it alone.
    absorb_everything(engine, "subscription_history")
    _events(engine, cutoff - 2 * SECOND)
    every_state_absorbs(engine, but=("subscription_history",))
    still = tick()
    assert isinstance(still, dg.SkipReason)
    assert still.skip_message.endswith(
        "materialize first: subscription_history (expired events committed since its last absorb)"
    )

    absorb_everything(engine, "subscription_history")
    request = tick()
    assert isinstance(request, dg.RunRequest)
    assert request.run_key == cutoff.date().isoformat()


def _run_job(database, **config):
    return retention_cleanup_job.execute_in_process(
        run_config=dg.RunConfig(ops={"delete_expired_events": RetentionCleanupConfig(**config)}),
        resources={"database": database},
        raise_on_error=False,
    )


def _observation(result) -> dict:
    [event] = [e for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"]
    observation = event.event_specific_data.asset_observation
    assert observation.asset_key == dg.AssetKey("analytics_events")
    return {k: v.value for k, v in observation.metadata.items()}


def test_job_deletes_and_reports_per_tenant_batches_and_oldest_remaining(engine, database):
    cutoff = retention_cutoff()
    _events(engine, cutoff - 100 * SECOND, cutoff - SECOND, cutoff + SECOND)
    every_state_absorbs(engine)

    dry = _run_job(database, dry_run=True)
    assert dry.success
    assert _observation(dry)["rows_to_delete_by_tenant"] == {"acme": 2}
    assert _count(engine) == 3

    result = _run_job(database, cutoff=cutoff.date().isoformat(), batch_size=1)
    assert result.success
    metadata = _observation(result)
    assert metadata["rows_deleted"] == 2
    assert metadata["rows_deleted_by_tenant"] == {"acme": 2}
    assert metadata["batches"] == 2
    assert metadata["complete"] is True
    assert metadata["duration_seconds"] >= 0
    assert metadata["oldest_remaining_timestamp"] == (cutoff + SECOND).replace(tzinfo=dt.UTC).timestamp()
    assert _count(engine) == 1


def test_job_refuses_a_cutoff_later_than_the_policy(engine, database):
    _events(engine, retention_cutoff() + SECOND)
    every_state_absorbs(engine)
    result = _run_job(database, cutoff=(retention_cutoff() + dt.timedelta(days=1)).date().isoformat())
    assert not result.success
    failure = result.failure_data_for_node("delete_expired_events").user_failure_data
    assert failure.description.startswith("cutoff ")
    assert "later than the retention policy allows" in failure.description
    assert _count(engine) == 1


def test_job_fails_naming_the_asset_to_materialize_first(engine, database, monkeypatch):
    never_materialized(engine, "subscription_history")
    _events(engine, retention_cutoff() - SECOND)
    every_state_absorbs(engine, but=("subscription_history",))

    result = _run_job(database)

    assert not result.success
    failure = result.failure_data_for_node("delete_expired_events").user_failure_data
    assert "materialize first: subscription_history" in failure.description
    assert failure.metadata["assets_to_materialize_first"].value == ["subscription_history"]
    assert _count(engine) == 1


def test_command_dry_run_then_run_with_months(engine, db_url):
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    _events(engine, now - dt.timedelta(days=100), now - dt.timedelta(days=1))
    every_state_absorbs(engine)
    env = {"DATABASE_URL": db_url}

    dry = CliRunner().invoke(main, ["retention", "run", "--dry-run", "--months", "2"], env=env)
    assert dry.exit_code == 0, dry.output
    assert "would delete 1 events" in dry.output
    assert _count(engine) == 2

    run = CliRunner().invoke(main, ["retention", "run", "--months", "2"], env=env)
    assert run.exit_code == 0, run.output
    assert "deleted 1 events in 1 batches" in run.output
    assert "acme\t1" in run.output
    assert _count(engine) == 1


def test_command_takes_a_wal_limit_and_refuses_a_non_positive_one_by_name(engine, db_url):
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    _events(engine, now - dt.timedelta(days=100), now - dt.timedelta(days=1))
    every_state_absorbs(engine)
    env = {"DATABASE_URL": db_url}

    refused = CliRunner().invoke(
        main, ["retention", "run", "--months", "2", "--max-wal-mb-per-second", "0"], env=env
    )
    assert refused.exit_code == 2
    assert "--max-wal-mb-per-second" in refused.output
    assert _count(engine) == 2

    run = CliRunner().invoke(
        main, ["retention", "run", "--months", "2", "--max-wal-mb-per-second", "4"], env=env
    )
    assert run.exit_code == 0, run.output
    assert "deleted 1 events in 1 batches" in run.output
    assert _count(engine) == 1


def test_command_refusal_is_one_clear_line(engine, db_url, monkeypatch):
    never_materialized(engine, "subscription_history")
    _events(engine, retention_cutoff() - SECOND)
    every_state_absorbs(engine, but=("subscription_history",))

    result = CliRunner().invoke(main, ["retention", "run"], env={"DATABASE_URL": db_url})

    assert result.exit_code == 1
    assert "materialize first: subscription_history (never materialized)" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert _count(engine) == 1


def test_job_passes_its_wal_limit_to_the_purge_and_refuses_a_non_positive_one(engine, database, monkeypatch):
    from analytics_pipeline.retention import definitions as retention

    cutoff = retention_cutoff()
    _events(engine, cutoff - SECOND)
    every_state_absorbs(engine)
    limits = []
    purge = retention.purge_expired_events

    def recording(*args, **kwargs):
        limits.append(kwargs["max_wal_mb_per_second"])
        return purge(*args, **kwargs)

    monkeypatch.setattr(retention, "purge_expired_events", recording)

    refused = _run_job(database, max_wal_mb_per_second=0)
    assert not refused.success
    failure = refused.failure_data_for_node("delete_expired_events").user_failure_data
    assert failure.description == "max_wal_mb_per_second must be > 0, got 0.0"
    assert _count(engine) == 1

    result = _run_job(database, max_wal_mb_per_second=2.5)
    assert result.success
    assert limits == [0, 2.5]
    metadata = _observation(result)
    assert metadata["rows_deleted"] == 1
    assert {"wal_mb", "paused_seconds"} <= metadata.keys()
    assert _count(engine) == 0


def _absorbed_above_the_horizon(engine, *event_ids: str, tenant: str = "acme") -> None:
    """Expired events (2020-01-01) of `tenant`, committed while an older platform transaction is
    still running, and every declared state absorbing them then: every state holds them, but they
    lie above the absorbed horizon (that older transaction), so the cleanup holds them back. The
    events committed before lie below it."""
    no_older_transaction_in_flight(engine)
    with engine.connect() as older:
        older.execute(sa.text("SELECT pg_current_xact_id()"))  # it has written: it has an id
        with engine.begin() as conn:
            conn.execute(
                sa.text("INSERT INTO organizations (id, name) VALUES (:t, :t) ON CONFLICT DO NOTHING"),
                {"t": tenant},
            )
            for event_id in event_ids:
                conn.execute(
                    sa.text(
                        'INSERT INTO analytics_events (id, tenant_id, event_type, event_data, "timestamp", created_at) '
                        "VALUES (:id, :t, 'page_view', '{}', '2020-01-01', '2020-01-01')"
                    ),
                    {"id": event_id, "t": tenant},
                )
        for name in declared_state_names():
            set_watermark(engine, name)
        older.rollback()


def _event_ids(engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(sa.text("SELECT id FROM analytics_events")).scalars())


def test_command_holds_back_events_above_the_absorbed_horizon_and_purges_the_rest(engine, db_url):
    cutoff = retention_cutoff()
    _events(engine, cutoff - 100 * SECOND, cutoff - SECOND, cutoff + SECOND)
    _absorbed_above_the_horizon(engine, "odd-2", "odd-1", tenant="globex")
    env = {"DATABASE_URL": db_url}
    held = f"held back 2 expired events (2 {HELD_BACK_UNABSORBED}), ids odd-1 .. odd-2"

    dry = CliRunner().invoke(main, ["retention", "run", "--dry-run"], env=env)
    assert dry.exit_code == 0, dry.output
    assert "would delete 2 events" in dry.output
    assert held in dry.output.splitlines()

    run = CliRunner().invoke(main, ["retention", "run"], env=env)
    assert run.exit_code == 0, run.output
    assert "deleted 2 events in 1 batches" in run.output
    assert held in run.output.splitlines()
    assert "  acme\t2" in run.output.splitlines() and "globex\t" not in run.output
    remaining = _event_ids(engine)
    assert {"odd-1", "odd-2"} <= remaining and len(remaining) == 3

    # Once the states have absorbed again, with no older transaction running, they go.
    every_state_absorbs(engine)
    later = CliRunner().invoke(main, ["retention", "run"], env=env)
    assert later.exit_code == 0, later.output
    assert "deleted 2 events in 1 batches" in later.output
    assert "  globex\t2" in later.output.splitlines() and "held back" not in later.output
    assert len(_event_ids(engine)) == 1


def test_job_reports_what_it_held_back_and_the_sensor_still_requests_runs(engine, database):
    cutoff = retention_cutoff()
    _events(engine, cutoff - SECOND)
    _absorbed_above_the_horizon(engine, "odd")

    with dg.build_sensor_context(resources={"database": database}) as context:
        assert isinstance(retention_cleanup_sensor(context), dg.RunRequest)

    result = _run_job(database)
    assert result.success
    metadata = _observation(result)
    assert metadata["rows_deleted"] == 1
    assert metadata["held_back"] == 1
    assert metadata["held_back_reasons"] == {HELD_BACK_UNABSORBED: 1}
    assert metadata["held_back_ids"] == "odd .. odd"
    assert _event_ids(engine) == {"odd"}
