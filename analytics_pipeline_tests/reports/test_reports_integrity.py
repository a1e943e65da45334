"""A report is never sent broken: a failing query or chart fails the delivery visibly (log, retry,
the run's failure alert to ALERT_EMAIL); an attachment above the size limit becomes a note with a
link; empty tables are not attached as if they held rows. And `skip_empty`: nothing is sent for
a period without data, recorded once as skipped.

Real PostgreSQL, real SMTP servers on loopback (aiosmtpd): one receives the reports, another the
alerts.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from analytics_pipeline.alerts import run_failure_alert_sensor
from analytics_pipeline.cli import main
from analytics_pipeline.core.resources import MailResource
from analytics_pipeline.reports import charts
from analytics_pipeline.reports.assets import report_deliveries
from analytics_pipeline.reports.claims import due_deliveries
from analytics_pipeline.reports.delivery import deliver_scheduled

from ..loopback_smtp import loopback_inbox
from .support import DUE, NOW, RECIPIENTS, add_org, add_report, add_revenue, delivery_rows, report_row, text_parts

pytestmark = pytest.mark.usefixtures("delivery_settings")


def _break_line_charts(monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise ValueError("x and y must have same first dimension")

    monkeypatch.setattr(charts, "line_chart", broken)


def test_a_failing_chart_fails_the_run_alerts_and_sends_nothing(engine, database, mail, inbox, monkeypatch):
    """Through the asset, as the sensor's run does it: the delivery is logged as retrying, the run
    fails, and the failure alert reaches ALERT_EMAIL naming the chart."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    today = now.date()
    with engine.begin() as conn:
        add_org(conn, "org-a", "Acme")
        for i in range(1, 8):  # daily rows in the trend window, so the MRR trend is drawn
            day = today - dt.timedelta(days=i)
            add_revenue(conn, "org-a", "day", day, day, 1000, 12000, 0, 0, 0, 0, 0, 10, 1, 1, 0, 0)
        add_report(conn, "r1", report_type="revenue_summary", frequency="daily",
                   next_run_at=now - dt.timedelta(minutes=1))
    _break_line_charts(monkeypatch)
    with loopback_inbox(monkeypatch) as alerts, dg.DagsterInstance.ephemeral() as instance:
        context = lambda cursor: dg.build_sensor_context(  # noqa: E731
            instance=instance, cursor=cursor, resources={"mail": MailResource()})
        cursor = run_failure_alert_sensor.evaluate_tick(context(None)).cursor
        result = dg.materialize(
            [report_deliveries], instance=instance, resources={"database": database, "mail": mail},
            raise_on_error=False,
            run_config={"ops": {"report_deliveries": {"config": {"report_id": "r1", "due_at": "x"}}}},
        )
        assert not result.success
        run_failure_alert_sensor.evaluate_tick(context(cursor))
    assert inbox.received == []
    [row] = delivery_rows(engine, "r1")
    assert row["status"] == "retrying" and row["attempts"] == 1
    assert "chart 'MRR trend' could not be drawn: ValueError: x and y must have same first dimension" in row["last_error"]
    [alert] = alerts.messages
    assert alert["To"] == "ops@example.com"
    assert "chart 'MRR trend' could not be drawn" in alert.get_content()


def test_a_failing_query_is_retried_and_the_report_goes_out_once_it_works(tenants, database, mail, inbox):
    # Revoked in this test's database only: the application role may no longer read the table.
    with tenants.begin() as conn:
        add_report(conn, "r1", report_type="tournament_performance")
        conn.execute(sa.text("REVOKE SELECT ON tournament_aggregates FROM analytics_app"))
    first = deliver_scheduled(database, mail, "r1", now=NOW)
    assert first.status == "retrying" and first.broken
    [row] = delivery_rows(tenants, "r1")
    assert "query tournament_summary failed: permission denied for table tournament_aggregates" in row["last_error"]
    assert inbox.received == []
    assert report_row(tenants, "r1")["next_run_at"] == DUE  # the occurrence waits for its report

    with tenants.begin() as conn:
        conn.execute(sa.text("GRANT SELECT ON tournament_aggregates TO analytics_app"))
        [retry] = due_deliveries(conn, row["next_attempt_at"])
    second = deliver_scheduled(database, mail, "r1", now=row["next_attempt_at"])
    assert (second.status, second.attempt, retry.attempt) == ("sent", 2, 2)
    assert len(inbox.received) == len(RECIPIENTS)
    assert "80.0 %" in text_parts(inbox.messages()[0])  # the completion rate of week 45


def test_an_attachment_above_the_limit_becomes_a_link_to_the_dashboard(tenants, database, mail, inbox, monkeypatch):
    # The revenue CSV has 9 rows of 15 columns (about 1 kB); the other two are far smaller.
    monkeypatch.setenv("REPORT_ATTACHMENT_MAX_BYTES", "700")
    with tenants.begin() as conn:
        add_report(conn, "r1")
    assert deliver_scheduled(database, mail, "r1", now=NOW).status == "sent"
    message = inbox.messages()[0]
    names = {p.get_filename() for p in message.iter_attachments()}
    assert names == {"user_cohorts_2025-11-03_2025-11-09.csv", "tournament_aggregates_2025-11-03_2025-11-09.csv"}
    link = "https://analytics.example.com/v1/revenue?format=csv&period_type=week&from=2025-10-27&to=2025-11-09"
    plain = message.get_body(("plain",)).get_content()
    assert "revenue_aggregates_2025-11-03_2025-11-09.csv" in plain and "is not attached" in plain
    assert link in plain
    assert link.replace("&", "&amp;") in message.get_body(("html",)).get_content()


def test_without_dashboard_url_a_large_attachment_holds_the_delivery(tenants, database, monkeypatch, tmp_path):
    """No link to give: the report is not sent without its rows; the operator's fix is picked up
    by the retries. (In the outbox, where unsubscribe links may point at localhost.)"""
    monkeypatch.setenv("REPORT_ATTACHMENT_MAX_BYTES", "700")
    monkeypatch.delenv("DASHBOARD_URL")
    with tenants.begin() as conn:
        add_report(conn, "r1")
    monkeypatch.delenv("SMTP_HOST", raising=False)
    outbox = MailResource(outbox_dir=str(tmp_path), mail_from="Analytics <reports@example.com>")
    outcome = deliver_scheduled(database, outbox, "r1", now=NOW)
    assert outcome.status == "retrying" and "DASHBOARD_URL must be set" in outcome.detail
    assert list(tmp_path.iterdir()) == []


def test_empty_tables_are_named_not_attached(org_a, database, mail, inbox):
    with org_a.begin() as conn:
        add_report(conn, "r1", report_type="revenue_summary")
    assert deliver_scheduled(database, mail, "r1", now=NOW).status == "sent"
    message = inbox.messages()[0]
    assert list(message.iter_attachments()) == []
    plain = message.get_body(("plain",)).get_content()
    assert "No rows for this period in revenue_aggregates" in plain
    assert "attached as CSV" not in plain


# --- Skip when empty ------------------------------------------------------------------------------


def test_skip_empty_sends_nothing_and_logs_skipped_once(org_a, database, mail, inbox):
    with org_a.begin() as conn:
        add_report(conn, "r1", parameters={"skip_empty": True})
    first = deliver_scheduled(database, mail, "r1", now=NOW)
    again = deliver_scheduled(database, mail, "r1", now=NOW + dt.timedelta(minutes=1))
    assert first.status == "skipped" and "no data" in first.detail
    assert again.status == "skipped" and "not due" in again.detail
    assert inbox.received == []
    [row] = delivery_rows(org_a, "r1")
    assert (row["status"], row["attempts"], row["sent_at"], row["scheduled_for"]) == ("skipped", 1, None, DUE)
    report = report_row(org_a, "r1")
    assert (report["next_run_at"], report["last_run_at"]) == (DUE + dt.timedelta(days=7), None)
    with org_a.connect() as conn:
        assert due_deliveries(conn, NOW + dt.timedelta(hours=1)) == []


def test_skip_empty_still_sends_a_period_with_data(tenants, database, mail, inbox):
    with tenants.begin() as conn:
        add_report(conn, "r1", report_type="tournament_performance", parameters={"skip_empty": True})
    assert deliver_scheduled(database, mail, "r1", now=NOW).status == "sent"
    assert len(inbox.received) == len(RECIPIENTS)


def test_a_balance_alone_is_data(engine, database, mail, inbox):
    """MRR carried into a week without a payment is still something to report."""
    with engine.begin() as conn:
        add_org(conn, "org-a", "Acme")
        add_revenue(conn, "org-a", "week", "2025-11-03", "2025-11-09", 500, 6000, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        add_report(conn, "r1", report_type="revenue_summary", parameters={"skip_empty": True})
    assert deliver_scheduled(database, mail, "r1", now=NOW).status == "sent"


@pytest.mark.parametrize("flag, key", [("--skip-empty", "skip_empty"), ("--pdf", "pdf")])
def test_add_takes_the_delivery_options(db_url, org_a, tmp_path, flag, key):
    result = CliRunner().invoke(
        main, ["reports", "add", "--tenant", "org-a", "--name", "Weekly", "--type", "revenue_summary",
               "--frequency", "weekly", "--to", "ann@example.com", flag],
        env={"DATABASE_URL": db_url, "ANALYTICS_HOME": str(tmp_path)}, catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    with org_a.connect() as conn:
        parameters = conn.execute(sa.text("SELECT parameters FROM scheduled_reports")).scalar_one()
    assert parameters[key] is True


# --- One message per recipient, once --------------------------------------------------------------


def test_a_retry_sends_only_to_the_recipients_still_waiting(org_a, database, mail, inbox):
    inbox.refuse["bob@example.org"] = "451 4.3.0 mailbox busy, try again later"
    with org_a.begin() as conn:
        add_report(conn, "r1", report_type="revenue_summary")
    first = deliver_scheduled(database, mail, "r1", now=NOW)
    assert first.status == "retrying" and "after 1 of 2 recipients received it" in first.detail
    [row] = delivery_rows(org_a, "r1")
    assert list(row["delivered_to"]) == ["ann@example.com"]

    del inbox.refuse["bob@example.org"]
    assert deliver_scheduled(database, mail, "r1", now=row["next_attempt_at"]).status == "sent"
    assert [to for to, _ in inbox.received] == [["ann@example.com"], ["bob@example.org"]]
    [row] = delivery_rows(org_a, "r1")
    assert (row["status"], row["attempts"], sorted(row["delivered_to"])) == ("sent", 2, RECIPIENTS)
