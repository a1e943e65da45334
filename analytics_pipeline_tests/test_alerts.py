"""Failure alerts: one email per failed run, naming the run and the error, through a real SMTP
server on loopback (aiosmtpd)."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator

import dagster as dg
import pytest

from analytics_pipeline.alerts import alert_recipients, run_failure_alert_sensor, send_with_retries
from analytics_pipeline.resources import MailResource, TemporaryMailError
from analytics_pipeline.settings import ConfigError

from .loopback_smtp import Inbox, free_port, loopback_inbox

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
    monkeypatch.setattr("analytics_pipeline.alerts.time.sleep", waits.append)
    with pytest.raises(TemporaryMailError, match="Connection refused|ConnectionRefused"):
        send_with_retries(MailResource(), message, "x.eml", delays=(1.0, 4.0))
    assert waits == [1.0, 4.0]
