"""Failure alerts: one email per failed run, naming the run and the error, and one per run whose
ERROR asset checks failed, through a real SMTP server on loopback (aiosmtpd); the checks fail for
real, on user_cohorts in PostgreSQL."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator

import dagster as dg
import pytest
import sqlalchemy as sa

from analytics_pipeline import definitions
from analytics_pipeline.aggregation.checks import NO_MALFORMED_EVENTS_CHECK, VALUES_FIT_COLUMNS_CHECK
from analytics_pipeline.alerts import (
    alert_recipients,
    asset_check_failure_alert_sensor,
    check_failure_alert,
    run_failure_alert_sensor,
    send_with_retries,
)
from analytics_pipeline.cohorts.assets import user_cohorts
from analytics_pipeline.cohorts.checks import LTV_NEVER_DECREASES_CHECK
from analytics_pipeline.core.resources import MailResource, TemporaryMailError, pipeline_resources
from analytics_pipeline.core.settings import ConfigError
from analytics_pipeline.revenue.assets import revenue_aggregates

from ..helpers import event, insert_events, range_tags
from ..loopback_smtp import Inbox, free_port, loopback_inbox

days = dg.DailyPartitionsDefinition(start_date="2026-01-01", timezone="UTC")
REASON = "too many clients already"


@dg.asset(partitions_def=days)
def failing_aggregate() -> None:
    raise RuntimeError(REASON)


@dg.asset
def healthy_aggregate() -> None:
    pass


@pytest.fixture
def inbox(monkeypatch) -> Iterator[Inbox]:
    with loopback_inbox(monkeypatch, alert_email="ops@example.com, oncall@example.com") as inbox:
        yield inbox


def _tick(instance: dg.DagsterInstance, cursor: str | None) -> str | None:
    """One evaluation of the sensor, as the daemon does it; returns the new cursor."""
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"mail": MailResource()})
    return run_failure_alert_sensor.evaluate_tick(context).cursor


def _fail(instance: dg.DagsterInstance, partition: str) -> str:
    result = dg.materialize([failing_aggregate], instance=instance, partition_key=partition, raise_on_error=False)
    assert not result.success
    return result.run_id


def test_one_alert_per_failed_run_naming_the_run_and_the_error(inbox):
    with dg.DagsterInstance.ephemeral() as instance:
        cursor = _tick(instance, None)  # the first tick only places the cursor
        first = _fail(instance, "2026-03-04")
        second = _fail(instance, "2026-03-05")
        assert dg.materialize([healthy_aggregate], instance=instance).success

        cursor = _tick(instance, cursor)
        assert len(inbox.messages) == 2
        _tick(instance, cursor)
        assert len(inbox.messages) == 2, "a later tick must not alert the same runs again"

    by_run = {m["Message-ID"].strip(): m for m in inbox.messages}  # a long header is folded
    assert set(by_run) == {f"<run-failure-{first}@analytics-pipeline>", f"<run-failure-{second}@analytics-pipeline>"}
    message = by_run[f"<run-failure-{first}@analytics-pipeline>"]
    assert message["Subject"].strip() == f"[analytics-pipeline] Run {first[:8]} failed: failing_aggregate (2026-03-04)"
    assert message["From"] == "pipeline@example.com"
    assert inbox.envelopes[0] == ["ops@example.com", "oncall@example.com"]
    body = message.get_content()
    assert f"Run {first} failed." in body
    assert "Partitions:  2026-03-04" in body
    assert "Step failing_aggregate:" in body
    assert f"RuntimeError: {REASON}" in body
    assert "Traceback" not in body and 'File "' not in body


def test_the_alert_links_the_run_page_when_the_ui_address_is_known(inbox, monkeypatch):
    monkeypatch.setenv("DAGSTER_WEBSERVER_URL", "https://dagster.example.com/")
    with dg.DagsterInstance.ephemeral() as instance:
        cursor = _tick(instance, None)
        run_id = _fail(instance, "2026-03-04")
        _tick(instance, cursor)

    [message] = inbox.messages
    assert f"Run page:    https://dagster.example.com/runs/{run_id}" in message.get_content()


def test_without_smtp_host_the_alert_lands_in_the_outbox(monkeypatch, tmp_path):
    monkeypatch.setenv("ANALYTICS_HOME", str(tmp_path))
    monkeypatch.setenv("ALERT_EMAIL", "ops@example.com")
    for name in ("SMTP_HOST", "SMTP_PORT", "SMTP_SECURITY", "MAIL_FROM"):
        monkeypatch.delenv(name, raising=False)
    with dg.DagsterInstance.ephemeral() as instance:
        cursor = _tick(instance, None)
        run_id = _fail(instance, "2026-03-04")
        _tick(instance, cursor)
    saved = email.message_from_bytes(
        (tmp_path / "outbox" / f"run-failure-{run_id}.eml").read_bytes(), policy=email.policy.default
    )
    assert REASON in saved.get_content()


def test_without_alert_email_the_tick_passes_and_sends_nothing(inbox, monkeypatch):
    monkeypatch.delenv("ALERT_EMAIL")
    with dg.DagsterInstance.ephemeral() as instance:
        cursor = _tick(instance, None)
        _fail(instance, "2026-03-04")
        _tick(instance, cursor)
    assert inbox.messages == []


def test_invalid_alert_address_is_named(monkeypatch):
    monkeypatch.setenv("ALERT_EMAIL", "ops@example.com, oncall at example")
    with pytest.raises(ConfigError, match="ALERT_EMAIL.*oncall at example"):
        alert_recipients()


def test_unreachable_server_is_retried_then_reported(monkeypatch):
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SMTP_PORT", str(free_port()))  # nothing listens there
    monkeypatch.setenv("SMTP_SECURITY", "none")
    monkeypatch.setenv("MAIL_FROM", "pipeline@example.com")
    message = email.message.EmailMessage()
    message["To"] = "ops@example.com"
    message["From"] = "pipeline@example.com"
    waits = []
    monkeypatch.setattr("analytics_pipeline.alerts.sensors.time.sleep", waits.append)
    with pytest.raises(TemporaryMailError, match="Connection refused|ConnectionRefused"):
        send_with_retries(MailResource(), message, "x.eml", delays=(1.0, 4.0))
    assert waits == [1.0, 4.0]


# --- Failed ERROR asset checks --------------------------------------------------------------

# Two January signups; u2 pays 30 in April (cohort month 3), so the cohort's ltv is 0, 0, 0, 15,
# 15 for January..May. The signup without a user in May is malformed: the WARN check fails in
# every run that covers May.
COHORT_EVENTS = [
    event("user_signup", "2025-01-05 10:00", "u1"),
    event("user_signup", "2025-01-20 10:00", "u2"),
    event("payment_completed", "2025-04-15 10:00", "u2", payment_id="p1", amount="30.00"),
    event("user_signup", "2025-05-01 10:00"),
]
LTV_CHECK = f"user_cohorts:{LTV_NEVER_DECREASES_CHECK}"


@pytest.fixture
def cohorts_db(db_url, engine, monkeypatch):
    """user_cohorts written for January..May, every ERROR check passing."""
    insert_events(engine, COHORT_EVENTS)
    return db_url


def _materialize_cohorts(instance, db_url, partition=None, tags=None) -> dg.ExecuteInProcessResult:
    result = dg.materialize(
        [user_cohorts],
        instance=instance,
        partition_key=partition,
        tags=tags,
        resources=pipeline_resources(db_url),
    )
    assert result.success
    return result


def _break_ltv(engine) -> None:
    """April's ltv above May's: the next run of May fails ltv_never_decreases (ERROR) and no other
    ERROR check, since April's row is not among the rows it writes."""
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE user_cohorts SET ltv = 99 WHERE id = 't1:2025-01-01:3'"))


def _failed(result) -> dict[str, str]:
    return {e.check_name: e.severity.value for e in result.get_asset_check_evaluations() if not e.passed}


def _check_tick(instance, cursor):
    """One evaluation of the check alert sensor with the code location's definitions, as the
    daemon does it; returns (new cursor, skip message)."""
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, definitions=definitions.defs, resources={"mail": MailResource()}
    )
    data = asset_check_failure_alert_sensor.evaluate_tick(context)
    return data.cursor, data.skip_message


def _ltv_storage_id(instance, run_id) -> int:
    records = instance.get_records_for_run(
        run_id=run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ).records
    return next(
        r.storage_id
        for r in records
        if r.event_log_entry.dagster_event.asset_check_evaluation_data.check_name == LTV_NEVER_DECREASES_CHECK
    )


def test_a_failed_error_check_is_alerted_once(inbox, cohorts_db, engine):
    with dg.DagsterInstance.ephemeral() as instance:
        cursor, _ = _check_tick(instance, None)  # the first tick only places the cursor
        passing = _materialize_cohorts(instance, cohorts_db, tags=range_tags("2025-01-01", "2025-05-01"))
        assert _failed(passing) == {NO_MALFORMED_EVENTS_CHECK: "WARN"}
        cursor, _ = _check_tick(instance, cursor)
        assert inbox.messages == [], "passing checks and a WARN failure send nothing"

        _break_ltv(engine)
        failing = _materialize_cohorts(instance, cohorts_db, partition="2025-05-01")
        assert _failed(failing) == {LTV_NEVER_DECREASES_CHECK: "ERROR", NO_MALFORMED_EVENTS_CHECK: "WARN"}
        cursor, _ = _check_tick(instance, cursor)
        assert len(inbox.messages) == 1
        # A later tick, from the stored cursor as after a restart of the daemon, sends nothing.
        _check_tick(instance, cursor)
        assert len(inbox.messages) == 1
        storage_id = _ltv_storage_id(instance, failing.run_id)

    message = inbox.messages[0]
    run_id = failing.run_id
    assert message["Message-ID"].strip() == f"<asset-check-failure-{storage_id}@analytics-pipeline>"
    assert message["Subject"].strip() == (
        f"[analytics-pipeline] Check failed in run {run_id[:8]}: {LTV_CHECK} (2025-05-01)"
    )
    assert inbox.envelopes[0] == ["ops@example.com", "oncall@example.com"]
    body = message.get_content()
    assert f"run {run_id}" in body
    assert "Partitions:  2025-05-01" in body
    assert f"Check {LTV_NEVER_DECREASES_CHECK} on user_cohorts failed (severity ERROR):" in body
    assert "Within a cohort, ltv never decreases from one month_number to the next." in body
    assert "offending_rows: 1" in body
    assert "t1:2025-01-01:4: ltv 15.00 < 99.00 of month 3" in body  # May's row, against April's
    assert NO_MALFORMED_EVENTS_CHECK not in body


def test_the_alert_names_the_partition_range_of_the_run(inbox, cohorts_db, engine):
    with dg.DagsterInstance.ephemeral() as instance:
        _materialize_cohorts(instance, cohorts_db, tags=range_tags("2025-01-01", "2025-05-01"))
        cursor, _ = _check_tick(instance, None)
        _break_ltv(engine)
        # April is rewritten from the state, so only a run of May alone fails: a range starting
        # in May.
        _materialize_cohorts(instance, cohorts_db, tags=range_tags("2025-05-01", "2025-06-01"))
        _check_tick(instance, cursor)
    [message] = inbox.messages
    assert message["Subject"].strip().endswith(f"{LTV_CHECK} (2025-05-01...2025-06-01)")
    assert "Partitions:  2025-05-01...2025-06-01" in message.get_content()


def test_an_unsent_alert_waits_for_a_later_tick_and_a_sent_one_is_not_repeated(
    inbox, cohorts_db, engine, monkeypatch
):
    monkeypatch.setattr("analytics_pipeline.alerts.sensors.time.sleep", lambda seconds: None)
    refused = set()

    async def handle_data(server, session, envelope):
        text = envelope.content.decode()
        if any(run_id[:8] in text for run_id in refused):
            return "451 Requested action aborted: try again later"
        return await Inbox.handle_DATA(inbox, server, session, envelope)

    inbox.handle_DATA = handle_data
    with dg.DagsterInstance.ephemeral() as instance:
        _materialize_cohorts(instance, cohorts_db, tags=range_tags("2025-01-01", "2025-05-01"))
        cursor, _ = _check_tick(instance, None)
        _break_ltv(engine)
        first = _materialize_cohorts(instance, cohorts_db, partition="2025-05-01").run_id
        second = _materialize_cohorts(instance, cohorts_db, partition="2025-05-01").run_id

        refused.add(second)  # the server takes the first run's alert, not the second's
        cursor, skip = _check_tick(instance, cursor)
        assert [m["Subject"].strip() for m in inbox.messages] == [
            f"[analytics-pipeline] Check failed in run {first[:8]}: {LTV_CHECK} (2025-05-01)"
        ]
        assert f"run {second} not sent" in skip
        assert cursor == str(_ltv_storage_id(instance, second) - 1)

        refused.clear()
        cursor, _ = _check_tick(instance, cursor)
        assert [m["Subject"].strip() for m in inbox.messages][1:] == [
            f"[analytics-pipeline] Check failed in run {second[:8]}: {LTV_CHECK} (2025-05-01)"
        ]
        _check_tick(instance, cursor)
    assert len(inbox.messages) == 2, "each failed check alerted once, none lost"


def test_without_smtp_host_the_check_alert_lands_in_the_outbox(monkeypatch, tmp_path, cohorts_db, engine):
    monkeypatch.setenv("ANALYTICS_HOME", str(tmp_path))
    monkeypatch.setenv("ALERT_EMAIL", "ops@example.com")
    for name in ("SMTP_HOST", "SMTP_PORT", "SMTP_SECURITY", "MAIL_FROM"):
        monkeypatch.delenv(name, raising=False)
    with dg.DagsterInstance.ephemeral() as instance:
        _materialize_cohorts(instance, cohorts_db, tags=range_tags("2025-01-01", "2025-05-01"))
        cursor, _ = _check_tick(instance, None)
        _break_ltv(engine)
        run_id = _materialize_cohorts(instance, cohorts_db, partition="2025-05-01").run_id
        _check_tick(instance, cursor)
        storage_id = _ltv_storage_id(instance, run_id)
    saved = email.message_from_bytes(
        (tmp_path / "outbox" / f"asset-check-failure-{storage_id}.eml").read_bytes(), policy=email.policy.default
    )
    assert f"run {run_id}" in saved.get_content()


@dg.asset(check_specs=[dg.AssetCheckSpec("always_fails", asset="foreign_aggregate")])
def foreign_aggregate() -> dg.MaterializeResult:
    """An asset of another code location, as far as the project's definitions know."""
    return dg.MaterializeResult(check_results=[dg.AssetCheckResult(check_name="always_fails", passed=False)])


def test_failed_checks_of_another_code_location_are_not_alerted(inbox):
    with dg.DagsterInstance.ephemeral() as instance:
        cursor, _ = _check_tick(instance, None)
        result = dg.materialize([foreign_aggregate], instance=instance)
        assert [(e.passed, e.severity.value) for e in result.get_asset_check_evaluations()] == [(False, "ERROR")]
        cursor, _ = _check_tick(instance, cursor)
        _check_tick(instance, cursor)
    assert inbox.messages == []


def test_without_alert_email_the_check_tick_passes_and_sends_nothing(inbox, monkeypatch):
    monkeypatch.delenv("ALERT_EMAIL")
    with dg.DagsterInstance.ephemeral() as instance:
        context = dg.build_sensor_context(instance=instance, resources={"mail": MailResource()})
        cursor = asset_check_failure_alert_sensor.evaluate_tick(context).cursor
        dg.materialize([foreign_aggregate], instance=instance)
        context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"mail": MailResource()})
        assert asset_check_failure_alert_sensor.evaluate_tick(context).cursor != cursor
    assert inbox.messages == []


def test_on_an_event_log_sharded_by_run_the_check_sensor_says_why_it_skips(inbox):
    # Dagster's default SQLite storage (plain `dagster dev`): storage ids restart in every run's shard.
    with dg.instance_for_test() as instance:
        assert instance.event_log_storage.is_run_sharded
        cursor, skip = _check_tick(instance, "7")
    assert cursor == "7"
    assert "sharded by run" in skip
    assert inbox.messages == []


def test_long_check_metadata_is_cut_short():
    rows = [f"t{i}:day:2025-03-{i % 28 + 1:02d}" for i in range(200)]  # 200 rows of ~20 characters
    evaluation = dg.AssetCheckEvaluation(
        asset_key=dg.AssetKey("revenue_aggregates"),
        check_name="mrr_bridge",
        passed=False,
        metadata={"offending_rows": 200, "examples": dg.MetadataValue.json(rows)},
    )
    message = check_failure_alert(None, "r" * 36, [(41, evaluation)], {}, ["ops@example.com"], "p@example.com")
    body = message.get_content()
    [examples] = [line for line in body.splitlines() if line.startswith("  examples: ")]
    assert examples.startswith('  examples: ["t0:day:2025-03-01", "t1:day:2025-03-02"')
    assert examples.endswith(" [...]") and len(examples) == len("  examples: ") + 500 + len(" [...]")
    assert "  offending_rows: 200" in body
    assert message["Message-ID"] == "<asset-check-failure-41@analytics-pipeline>"


def test_a_value_no_column_holds_is_alerted_naming_tenant_period_and_value(inbox, db_url, engine, monkeypatch):
    # 2,000 weekly subscriptions at the contract's bound: each worth 99,999,999,999.99 x 52 / 12 =
    # 433,333,333,333.29 a month, ARR 2,000 x 12 x that = 10,399,999,999,998,960.00 >= 10^16.
    monkeypatch.setenv("ANALYTICS_RETENTION_MONTHS", "240")
    insert_events(engine, [
        event("subscription_started", "2025-03-03 10:00", f"c{n}", subscription_id=f"s{n}",
              amount="99999999999.99", plan_id="pro_week", interval="week")
        for n in range(2000)
    ], tenant_id="big")
    with dg.DagsterInstance.ephemeral() as instance:
        cursor, _ = _check_tick(instance, None)
        result = dg.materialize(
            [revenue_aggregates], instance=instance, partition_key="2025-03-03",
            resources=pipeline_resources(db_url),
        )
        assert result.success
        assert _failed(result) == {VALUES_FIT_COLUMNS_CHECK: "ERROR"}
        _check_tick(instance, cursor)
    (message,) = inbox.messages
    assert f"revenue_aggregates:{VALUES_FIT_COLUMNS_CHECK}" in message["Subject"]
    body = message.get_content()
    assert "tenant big, day 2025-03-03: arr = 10399999999998960.00" in body
    assert 'tenants_not_written: ["big"]' in body
