"""Scheduled report delivery against real PostgreSQL and a real SMTP server on loopback (aiosmtpd).

The aggregate rows are inserted by hand; the figures the email must show are worked out from
them in the comments, not taken from the code under test.
"""

from __future__ import annotations

import csv
import datetime as dt
import email
import io
from decimal import Decimal
from email import policy

import dagster as dg
import pytest
import sqlalchemy as sa

from analytics_pipeline.core.resources import MailResource
from analytics_pipeline.reports.assets import report_deliveries
from analytics_pipeline.reports.claims import MAX_ATTEMPTS, due_deliveries
from analytics_pipeline.reports.delivery import deliver_scheduled
from analytics_pipeline.reports.queries import read_report
from analytics_pipeline.reports.schedule import report_period
from analytics_pipeline.reports.sensors import scheduled_reports_sensor
from analytics_pipeline.reports.validation import validate_report

from .support import (
    DUE,
    NOW,
    RECIPIENTS,
    REVENUE_COLUMNS,
    add_org,
    add_report,
    delivery_rows,
    free_port,
    report_row,
    smtp,
    text_parts,
)

pytestmark = pytest.mark.usefixtures("delivery_settings")


# --- The email ---------------------------------------------------------------------------------------


def test_comprehensive_report_email(tenants, database, mail, inbox):
    with tenants.begin() as conn:
        add_report(conn, "r1")
    outcome = deliver_scheduled(database, mail, "r1", now=NOW)
    assert outcome.status == "sent", outcome.detail

    # One message per recipient, each addressed to that recipient only.
    assert sorted(envelope_to for envelope_to, _ in inbox.received) == [[r] for r in RECIPIENTS]
    messages = {m["To"]: m for m in inbox.messages()}
    assert set(messages) == set(RECIPIENTS)
    message = messages["ann@example.com"]
    assert message["Subject"] == "Acme Esports: Weekly KPIs – week 45 of 2025 (3 Nov – 9 Nov 2025)"
    assert message["From"] == "Analytics <reports@example.com>"
    assert delivery_rows(tenants, "r1")[0]["delivered_to"] == {r: m["Message-ID"] for r, m in messages.items()}
    assert messages["ann@example.com"]["Message-ID"] != messages["bob@example.org"]["Message-ID"]
    assert message.get_content_type() == "multipart/mixed"

    html = message.get_body(("html",)).get_content()
    plain = message.get_body(("plain",)).get_content()
    for figure in ("12,500.00", "+25.0 %", "14,000.00", "+75.0 %", "+100.0 %", "80.0 %"):
        assert figure in html and figure in plain, figure
    # Signups 4 against 2; tournaments by format from the events: single_elimination 3, swiss 1.
    assert "single_elimination 3, swiss 1" in plain

    images = [p for p in message.walk() if p.get_content_type() == "image/png"]
    # MRR trend, revenue by day, tournaments by format; the cohorts are a table only, not an image too.
    assert len(images) == 3
    for image in images:
        assert image.get_content().startswith(b"\x89PNG")
        assert f"cid:{image['Content-ID'].strip('<>')}" in html

    attachments = {p.get_filename(): p.get_content() for p in message.iter_attachments()}
    assert set(attachments) == {
        "revenue_aggregates_2025-11-03_2025-11-09.csv",
        "user_cohorts_2025-11-03_2025-11-09.csv",
        "tournament_aggregates_2025-11-03_2025-11-09.csv",
        "revenue_segments_2025-11-03_2025-11-09.csv",  # revenue by plan (test_reports_plans.py)
    }
    with tenants.connect() as conn:
        expected_revenue = conn.execute(sa.text(
            f"SELECT period_type, period_start, period_end, {', '.join(REVENUE_COLUMNS)} FROM revenue_aggregates "
            "WHERE tenant_id = 'org-a' AND period_start >= '2025-10-27'")).all()
        expected_cohorts = conn.execute(sa.text(
            "SELECT cohort_month, month_number, retained_users, cohort_size, ltv FROM user_cohorts "
            "WHERE tenant_id = 'org-a' AND NOT (cohort_month = '2025-09-01' AND month_number = 3)")).all()
    revenue_csv = list(csv.DictReader(io.StringIO(attachments["revenue_aggregates_2025-11-03_2025-11-09.csv"])))
    assert {(r["period_type"], r["period_start"], r["mrr"], r["total_revenue"], r["refund_amount"]) for r in revenue_csv} == {
        (r.period_type, r.period_start.isoformat(), str(r.mrr), str(r.total_revenue), str(r.refund_amount))
        for r in expected_revenue}
    assert {r["currency"] for r in revenue_csv} == {"USD"}  # no organization_settings row: the default
    assert len(revenue_csv) == len(expected_revenue) == 9  # 2 weeks + 7 days
    cohort_csv = list(csv.DictReader(io.StringIO(attachments["user_cohorts_2025-11-03_2025-11-09.csv"])))
    # Rates are fractions in every CSV: retained / size (40 of 100 is 0.4), not the table's percent.
    assert {(r["cohort_month"], int(r["month_number"]), Decimal(r["retention_rate"]), r["ltv"]) for r in cohort_csv} == {
        (r.cohort_month.isoformat(), r.month_number, Decimal(r.retained_users) / r.cohort_size, str(r.ltv))
        for r in expected_cohorts}

    # Nothing of org-b: not its name, numbers or formats, in any part.
    content = text_parts(message)
    for foreign in ("Bravo", "777,777.77", "777777.77", "654321.09", "654,321.09", "bravo_format", "7777"):
        assert foreign not in content

    [row] = delivery_rows(tenants, "r1")
    assert (row["status"], row["attempts"], row["scheduled_for"], row["sent_at"]) == ("sent", 1, DUE, NOW)
    assert (row["period_start"], row["period_end"]) == (dt.date(2025, 11, 3), dt.date(2025, 11, 9))
    report = report_row(tenants, "r1")
    assert (report["last_run_at"], report["next_run_at"]) == (NOW, DUE + dt.timedelta(days=7))


def test_report_reads_are_confined_to_the_tenant_by_row_level_security(tenants, database):
    """Even asked for another tenant's rows, a tenant transaction returns none of them."""
    report = validate_report(name="x", report_type="comprehensive", frequency="weekly",
                             recipients=RECIPIENTS, parameters={})
    period = report_period(DUE, "weekly", report.parameters)
    with database.tenant_transaction("org-a") as conn:
        data = read_report(conn, "org-b", "x", report, period)
    assert all(not table.rows for table in data.tables.values())
    assert data.formats == []


def test_delivery_log_is_under_row_level_security(tenants, database, mail):
    with tenants.begin() as conn:
        add_report(conn, "ra", report_type="revenue_summary")
        add_report(conn, "rb", tenant="org-b", report_type="revenue_summary")
    for report_id in ("ra", "rb"):
        assert deliver_scheduled(database, mail, report_id, now=NOW).status == "sent"
    with database.tenant_transaction("org-a") as conn:
        assert conn.execute(sa.text("SELECT report_id FROM report_deliveries")).scalars().all() == ["ra"]


def test_a_report_without_aggregates_yet_says_so(engine, database, mail, inbox):
    with engine.begin() as conn:
        add_org(conn, "org-a", "Acme Esports")
        add_report(conn, "r1", report_type="revenue_summary")
    assert deliver_scheduled(database, mail, "r1", now=NOW).status == "sent"
    message = inbox.messages()[0]
    assert "No revenue figures have been computed for this period yet" in message.get_body(("plain",)).get_content()


# --- Exactly once ------------------------------------------------------------------------------------


def test_repeated_tick_requests_one_delivery_and_a_retried_run_sends_once(org_a, database, mail, inbox):
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with org_a.begin() as conn:
        add_report(conn, "due", next_run_at=now - dt.timedelta(minutes=1))
        add_report(conn, "later", next_run_at=now + dt.timedelta(hours=1))
        add_report(conn, "paused", next_run_at=now - dt.timedelta(hours=1), is_active=False)
    context = dg.build_sensor_context(resources={"database": database})
    first = scheduled_reports_sensor(context)
    second = scheduled_reports_sensor(dg.build_sensor_context(resources={"database": database}))
    assert [r.run_key for r in first] == [r.run_key for r in second] == [
        f"due:{(now - dt.timedelta(minutes=1)).isoformat()}"]
    assert first[0].run_config["ops"]["report_deliveries"]["config"]["report_id"] == "due"
    assert delivery_rows(org_a, "due") == []  # the tick wrote nothing

    # The run, then the same run again (a retried run or a duplicate request).
    run_config = first[0].run_config
    resources = {"database": database, "mail": mail}
    results = [dg.materialize([report_deliveries], resources=resources, run_config=run_config) for _ in range(2)]
    assert [r.success for r in results] == [True, True]
    statuses = [r.asset_materializations_for_node("report_deliveries")[0].metadata["status"].value for r in results]
    assert statuses == ["sent", "skipped"]
    assert len(inbox.received) == len(RECIPIENTS)  # one message per recipient, once
    assert [r["status"] for r in delivery_rows(org_a, "due")] == ["sent"]
    assert isinstance(scheduled_reports_sensor(dg.build_sensor_context(resources={"database": database})), dg.SkipReason)


def test_smtp_down_then_up_is_retried_with_backoff_and_sent_once(org_a, database, inbox):
    with org_a.begin() as conn:
        add_report(conn, "r1", report_type="revenue_summary")
    down = smtp(free_port())  # nothing listens there
    first = deliver_scheduled(database, down, "r1", now=NOW)
    assert first.status == "retrying" and "ConnectionRefusedError" in first.detail
    [row] = delivery_rows(org_a, "r1")
    assert (row["status"], row["attempts"], row["next_attempt_at"]) == ("retrying", 1, NOW + dt.timedelta(minutes=5))
    assert report_row(org_a, "r1")["next_run_at"] == DUE  # the schedule waits for the delivery

    with org_a.connect() as conn:  # during the backoff nothing is due; after it, a retry with its own run key
        assert due_deliveries(conn, NOW + dt.timedelta(minutes=4)) == []
        [retry] = due_deliveries(conn, NOW + dt.timedelta(minutes=5))
    assert retry.run_key == f"r1:{DUE.isoformat()}:attempt-2"

    assert deliver_scheduled(database, smtp(inbox.port), "r1", now=NOW + dt.timedelta(minutes=4)).status == "skipped"
    second = deliver_scheduled(database, smtp(inbox.port), "r1", now=NOW + dt.timedelta(minutes=6))
    assert second.status == "sent" and second.attempt == 2
    assert len(inbox.received) == len(RECIPIENTS)
    [row] = delivery_rows(org_a, "r1")
    assert (row["status"], row["attempts"]) == ("sent", 2)
    assert report_row(org_a, "r1")["next_run_at"] == DUE + dt.timedelta(days=7)


def test_after_the_last_attempt_the_delivery_fails_the_run_and_the_schedule_moves_on(org_a, database):
    with org_a.begin() as conn:
        add_report(conn, "r1", report_type="revenue_summary")
    down = smtp(free_port())
    now = NOW
    for attempt in range(1, MAX_ATTEMPTS):
        assert deliver_scheduled(database, down, "r1", now=now).status == "retrying"
        now = delivery_rows(org_a, "r1")[0]["next_attempt_at"]
    last = deliver_scheduled(database, down, "r1", now=now)
    assert last.status == "failed" and "giving up" in last.detail
    [row] = delivery_rows(org_a, "r1")
    assert (row["status"], row["attempts"]) == ("failed", MAX_ATTEMPTS)
    report = report_row(org_a, "r1")
    assert (report["next_run_at"], report["last_run_at"]) == (DUE + dt.timedelta(days=7), None)


def test_a_failed_delivery_fails_its_run(org_a, database):
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with org_a.begin() as conn:
        add_report(conn, "bad", next_run_at=now - dt.timedelta(minutes=1), recipients=["not-an-address"])
    result = dg.materialize(
        [report_deliveries], resources={"database": database, "mail": smtp(free_port())}, raise_on_error=False,
        run_config={"ops": {"report_deliveries": {"config": {"report_id": "bad", "due_at": "x"}}}},
    )
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "recipients[0]: 'not-an-address' is not a valid email address" in failure.event_specific_data.error.message


def test_one_refused_recipient_is_recorded_and_the_others_receive_it(org_a, database, mail, inbox):
    inbox.refuse["gone@example.com"] = "550 5.1.1 <gone@example.com>: mailbox unavailable"
    with org_a.begin() as conn:
        add_report(conn, "r1", report_type="revenue_summary", recipients=["ann@example.com", "gone@example.com", "bob@example.org"])
    outcome = deliver_scheduled(database, mail, "r1", now=NOW)
    assert outcome.status == "sent"
    envelopes = sorted(envelope_to for envelope_to, _ in inbox.received)
    assert envelopes == [["ann@example.com"], ["bob@example.org"]]
    [row] = delivery_rows(org_a, "r1")
    assert row["status"] == "sent"
    assert row["refused_recipients"] == {"gone@example.com": "550 5.1.1 <gone@example.com>: mailbox unavailable"}


def test_every_recipient_refused_permanently_fails_without_retrying(org_a, database, mail, inbox):
    inbox.refuse["gone@example.com"] = "550 5.1.1 mailbox unavailable"
    with org_a.begin() as conn:
        add_report(conn, "r1", report_type="revenue_summary", recipients=["gone@example.com"])
    assert deliver_scheduled(database, mail, "r1", now=NOW).status == "failed"
    assert delivery_rows(org_a, "r1")[0]["attempts"] == 1


# --- Bad configuration in the table -------------------------------------------------------------------


def test_header_injection_in_the_table_is_recorded_and_other_reports_still_go_out(org_a, database, mail, inbox):
    with org_a.begin() as conn:
        add_report(conn, "evil-name", name="Weekly\r\nBcc: eve@example.net")
        add_report(conn, "evil-rcpt", recipients=["ann@example.com\r\nBcc: eve@example.net"])
        add_report(conn, "bad-params", parameters={"timezone": "Mars/Olympus"})
        add_report(conn, "good", report_type="revenue_summary")
    outcomes = {r: deliver_scheduled(database, mail, r, now=NOW) for r in ("evil-name", "evil-rcpt", "bad-params", "good")}
    assert {r: o.status for r, o in outcomes.items()} == {
        "evil-name": "failed", "evil-rcpt": "failed", "bad-params": "failed", "good": "sent"}
    assert "name: must not contain line breaks" in delivery_rows(org_a, "evil-name")[0]["last_error"]
    assert "recipients[0]" in delivery_rows(org_a, "evil-rcpt")[0]["last_error"]
    assert "unknown IANA time zone 'Mars/Olympus'" in delivery_rows(org_a, "bad-params")[0]["last_error"]
    assert len(inbox.received) == len(RECIPIENTS)  # the good report's
    assert all(b"eve@example.net" not in raw for _, raw in inbox.received)
    # Each bad report moves to its next occurrence instead of failing again on every tick.
    assert report_row(org_a, "evil-name")["next_run_at"] == DUE + dt.timedelta(days=7)


def test_check_constraints_refuse_unknown_type_and_frequency(engine):
    with engine.begin() as conn:
        add_org(conn, "org-a", "Acme")
    for change, constraint in ((dict(report_type="everything"), "scheduled_reports_report_type_check"),
                               (dict(frequency="hourly"), "scheduled_reports_frequency_check")):
        with pytest.raises(sa.exc.IntegrityError, match=constraint), engine.begin() as conn:
            add_report(conn, "r1", **change)


# --- Time ------------------------------------------------------------------------------------------------


def test_after_downtime_only_the_latest_missed_delivery_is_sent(engine, database, mail, inbox):
    with engine.begin() as conn:
        add_org(conn, "org-a", "Acme")
        add_report(conn, "r1", frequency="daily", report_type="revenue_summary",
                   next_run_at=dt.datetime(2025, 11, 1, 8, 0))
    outcome = deliver_scheduled(database, mail, "r1", now=dt.datetime(2025, 11, 4, 9, 0))
    assert (outcome.status, outcome.skipped_occurrences) == ("sent", 3)
    [message, _] = inbox.messages()
    assert message["Subject"].endswith("Mon 3 Nov 2025")  # the day before 4 Nov
    [row] = delivery_rows(engine, "r1")
    assert row["scheduled_for"] == dt.datetime(2025, 11, 4, 8, 0)
    assert report_row(engine, "r1")["next_run_at"] == dt.datetime(2025, 11, 5, 8, 0)


@pytest.mark.parametrize(
    "zone, frequency, due, now, expected_next",
    [
        # 08:00 Berlin the day before clocks go back (06:00 UTC) -> 08:00 CET (07:00 UTC).
        ("Europe/Berlin", "daily", dt.datetime(2025, 10, 25, 6), dt.datetime(2025, 10, 25, 6, 1),
         dt.datetime(2025, 10, 26, 7)),
        # Monday 09:00 New York before clocks go forward (14:00 UTC) -> 09:00 EDT (13:00 UTC).
        ("America/New_York", "weekly", dt.datetime(2025, 3, 3, 14), dt.datetime(2025, 3, 3, 14, 1),
         dt.datetime(2025, 3, 10, 13)),
    ],
)
def test_next_run_at_keeps_local_time_across_dst(engine, database, mail, inbox, zone, frequency, due, now, expected_next):
    with engine.begin() as conn:
        add_org(conn, "org-a", "Acme")
        add_report(conn, "r1", frequency=frequency, report_type="revenue_summary",
                   parameters={"timezone": zone}, next_run_at=due)
    assert deliver_scheduled(database, mail, "r1", now=now).status == "sent"
    assert report_row(engine, "r1")["next_run_at"] == expected_next


def test_monthly_report_on_the_31st(engine, database, mail, inbox):
    """No day_of_month in parameters: it comes from next_run_at and is pinned at the first
    delivery, so after 28 February the report returns to the 31st."""
    with engine.begin() as conn:
        add_org(conn, "org-a", "Acme")
        add_report(conn, "r1", frequency="monthly", report_type="revenue_summary",
                   next_run_at=dt.datetime(2025, 1, 31, 8))
    seen = []
    for _ in range(3):
        due = report_row(engine, "r1")["next_run_at"]
        assert deliver_scheduled(database, mail, "r1", now=due + dt.timedelta(minutes=1)).status == "sent"
        seen.append(report_row(engine, "r1")["next_run_at"])
    assert seen == [dt.datetime(2025, 2, 28, 8), dt.datetime(2025, 3, 31, 8), dt.datetime(2025, 4, 30, 8)]
    assert report_row(engine, "r1")["parameters"]["day_of_month"] == 31
    assert [m["Subject"].rsplit("– ", 1)[1] for m in inbox.messages() if m["To"] == RECIPIENTS[0]] == ["December 2024", "January 2025", "February 2025"]


# --- Outbox ------------------------------------------------------------------------------------------------


def test_without_smtp_host_the_message_is_written_to_the_outbox(engine, database, tmp_path, monkeypatch):
    for variable in ("SMTP_HOST", "MAIL_FROM"):
        monkeypatch.delenv(variable, raising=False)
    with engine.begin() as conn:
        add_org(conn, "org-a", "Acme")
        add_report(conn, "r1", report_type="tournament_performance")
    outcome = deliver_scheduled(database, MailResource(outbox_dir=str(tmp_path)), "r1", now=NOW)
    assert outcome.status == "sent" and str(tmp_path) in outcome.detail
    paths = sorted(tmp_path.glob("*.eml"))
    assert outcome.outbox_path in paths
    messages = [email.message_from_bytes(path.read_bytes(), policy=policy.default) for path in paths]
    assert sorted(m["To"] for m in messages) == RECIPIENTS  # one file per recipient
    assert {m["Subject"] for m in messages} == {"Acme: Weekly KPIs – week 45 of 2025 (3 Nov – 9 Nov 2025)"}


def test_definitions_load_with_lineage_from_the_aggregates():
    from analytics_pipeline.definitions import defs

    assert defs.resolve_job_def("report_delivery_job") is not None
    assert defs.resolve_sensor_def("scheduled_reports_sensor").minimum_interval_seconds == 15 * 60
    spec = report_deliveries.specs_by_key[dg.AssetKey("report_deliveries")]
    assert {d.asset_key for d in spec.deps} == {
        dg.AssetKey("revenue_aggregates"), dg.AssetKey("revenue_kpis"), dg.AssetKey("user_cohorts"),
        dg.AssetKey("tournament_aggregates")}
