"""Scheduled report delivery against real PostgreSQL and a real SMTP server on loopback (aiosmtpd).

The aggregate rows are inserted by hand; the figures the email must show are worked out from
them in the comments, not taken from the code under test.
"""

from __future__ import annotations

import csv
import datetime as dt
import email
import io
import json
import socket
from email import policy

import dagster as dg
import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from analytics_pipeline.core.resources import MailResource
from analytics_pipeline.reports.assets import report_deliveries
from analytics_pipeline.reports.claims import MAX_ATTEMPTS, due_deliveries
from analytics_pipeline.reports.delivery import deliver_scheduled
from analytics_pipeline.reports.queries import read_report
from analytics_pipeline.reports.schedule import report_period
from analytics_pipeline.reports.sensors import scheduled_reports_sensor
from analytics_pipeline.reports.validation import validate_report

DUE = dt.datetime(2025, 11, 10, 8, 0)  # a Monday; weekly reports cover 3-9 Nov 2025 (ISO week 45)
NOW = DUE + dt.timedelta(minutes=5)
RECIPIENTS = ["ann@example.com", "bob@example.org"]


# --- A mail server on loopback -------------------------------------------------------------------


class Inbox:
    """aiosmtpd handler keeping what it receives; `refuse` maps an address to the reply refusing it."""

    def __init__(self) -> None:
        self.received: list[tuple[list[str], bytes]] = []
        self.refuse: dict[str, str] = {}
        self.port = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.received.append((list(envelope.rcpt_tos), envelope.original_content or envelope.content))
        return "250 Message accepted for delivery"

    def messages(self) -> list[email.message.EmailMessage]:
        return [email.message_from_bytes(raw, policy=policy.default) for _, raw in self.received]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def inbox():
    handler = Inbox()
    handler.port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=handler.port)
    controller.start()
    yield handler
    controller.stop()


@pytest.fixture(autouse=True)
def delivery_settings(monkeypatch):
    """Report emails link the Dashboard API (unsubscribe, large CSVs): the address recipients use."""
    monkeypatch.setenv("DASHBOARD_URL", "https://analytics.example.com")
    monkeypatch.setenv("UNSUBSCRIBE_SECRET", "unsubscribe-secret-of-the-tests-0123456789")
    monkeypatch.delenv("REPORT_ATTACHMENT_MAX_BYTES", raising=False)


def smtp(port: int) -> MailResource:
    return MailResource(host="127.0.0.1", port=port, security="none",
                        mail_from="Analytics <reports@example.com>", timeout_seconds=5)


@pytest.fixture
def mail(inbox) -> MailResource:
    return smtp(inbox.port)


# --- Data ----------------------------------------------------------------------------------------


def add_org(conn, tenant: str, name: str) -> None:
    conn.execute(sa.text("INSERT INTO organizations (id, name) VALUES (:t, :n)"), {"t": tenant, "n": name})


def add_report(conn, report_id: str, tenant: str = "org-a", *, name: str = "Weekly KPIs",
               report_type: str = "comprehensive", frequency: str = "weekly", recipients=None,
               parameters=None, next_run_at: dt.datetime = DUE, is_active: bool = True) -> None:
    conn.execute(
        sa.text(
            "INSERT INTO scheduled_reports (id, tenant_id, name, report_type, frequency, recipients, "
            "parameters, next_run_at, is_active) VALUES (:id, :t, :name, :type, :freq, :rcpt, "
            "CAST(:params AS jsonb), :next, :active)"
        ),
        {"id": report_id, "t": tenant, "name": name, "type": report_type, "freq": frequency,
         "rcpt": recipients or RECIPIENTS, "params": json.dumps(parameters) if parameters is not None else None,
         "next": next_run_at, "active": is_active},
    )


REVENUE_COLUMNS = ("mrr", "arr", "new_revenue", "expansion_revenue", "contraction_revenue",
                   "reactivation_revenue", "churned_revenue", "total_revenue", "payment_count",
                   "payment_success_count", "refund_count", "refund_amount")


def add_revenue(conn, tenant, period_type, start, end, *values) -> None:
    row = dict(zip(REVENUE_COLUMNS, values))
    conn.execute(
        sa.text(
            f"INSERT INTO revenue_aggregates (id, tenant_id, period_type, period_start, period_end, "
            f"{', '.join(REVENUE_COLUMNS)}) VALUES (:id, :t, :pt, :s, :e, "
            f"{', '.join(':' + c for c in REVENUE_COLUMNS)})"
        ),
        {"id": f"{tenant}-{period_type}-{start}", "t": tenant, "pt": period_type, "s": start, "e": end, **row},
    )


def add_tournaments(conn, tenant, start, end, count, completed, rate, players, avg_players, duration, fmt, revenue):
    conn.execute(
        sa.text(
            "INSERT INTO tournament_aggregates (id, tenant_id, period_type, period_start, period_end, "
            "tournament_count, completed_count, completion_rate, total_players, avg_players, "
            "avg_duration_minutes, most_popular_format, revenue) VALUES (:id, :t, 'week', :s, :e, :c, "
            ":done, :rate, :p, :ap, :d, :f, :r)"
        ),
        {"id": f"{tenant}-t-{start}", "t": tenant, "s": start, "e": end, "c": count, "done": completed,
         "rate": rate, "p": players, "ap": avg_players, "d": duration, "f": fmt, "r": revenue},
    )


def add_cohort(conn, tenant, month, number, size, retained, rate, revenue, ltv):
    conn.execute(
        sa.text(
            "INSERT INTO user_cohorts (id, tenant_id, cohort_month, month_number, cohort_size, "
            "retained_users, retention_rate, revenue, ltv) VALUES (:id, :t, :m, :n, :s, :r, :rate, :rev, :ltv)"
        ),
        {"id": f"{tenant}-{month}-{number}", "t": tenant, "m": month, "n": number, "s": size, "r": retained,
         "rate": rate, "rev": revenue, "ltv": ltv},
    )


def add_event(conn, event_id, tenant, event_type, data, user_id, timestamp):
    conn.execute(
        sa.text(
            "INSERT INTO analytics_events (id, tenant_id, event_type, event_data, user_id, timestamp) "
            "VALUES (:id, :t, :type, CAST(:data AS jsonb), :u, :ts)"
        ),
        {"id": event_id, "t": tenant, "type": event_type, "data": json.dumps(data), "u": user_id, "ts": timestamp},
    )


@pytest.fixture
def tenants(engine):
    """Two organizations. org-a's numbers are the ones worked out below; org-b's are made
    conspicuous (777,777.77 ...) so that their appearance anywhere in org-a's email shows."""
    with engine.begin() as conn:
        add_org(conn, "org-a", "Acme Esports")
        add_org(conn, "org-b", "Bravo Gaming")
        # Week 45 against week 44: MRR 10,000 -> 12,500 is +25.0 %, revenue 8,000 -> 14,000 +75.0 %,
        # payments 20 -> 40 +100.0 %, refunds 0 -> 2 has no percentage.
        add_revenue(conn, "org-a", "week", "2025-11-03", "2025-11-09",
                    12500, 150000, 3000, 500, 200, 0, 800, 14000, 40, 38, 2, 150)
        add_revenue(conn, "org-a", "week", "2025-10-27", "2025-11-02",
                    10000, 120000, 1000, 0, 0, 0, 500, 8000, 20, 20, 0, 0)
        for i in range(7):
            day = dt.date(2025, 11, 3) + dt.timedelta(days=i)
            add_revenue(conn, "org-a", "day", day, day, 10000 + 400 * i, 12 * (10000 + 400 * i),
                        0, 0, 0, 0, 0, 2000, 6, 5, 0, 0)
        # Outside every window the report reads: must be in no CSV.
        add_revenue(conn, "org-a", "week", "2025-10-13", "2025-10-19", 9000, 108000, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0)
        add_revenue(conn, "org-b", "week", "2025-11-03", "2025-11-09",
                    777777.77, 9333333.24, 0, 0, 0, 0, 0, 654321.09, 1, 1, 0, 0)
        add_tournaments(conn, "org-a", "2025-11-03", "2025-11-09", 10, 8, 80, 120, 12, 95.5, "single_elimination", 500)
        add_tournaments(conn, "org-a", "2025-10-27", "2025-11-02", 5, 5, 100, 50, 10, 90, "swiss", 250)
        add_tournaments(conn, "org-b", "2025-11-03", "2025-11-09", 99, 98, 98.99, 7777, 78.56, 1, "bravo_format", 7777)
        for month, number, size, retained, rate, ltv in [
            ("2025-09-01", 0, 100, 100, 100, 10), ("2025-09-01", 1, 100, 40, 40, 14),
            ("2025-09-01", 2, 100, 30, 30, 17), ("2025-09-01", 3, 100, 25, 25, 19),  # Dec: after the period
            ("2025-10-01", 0, 50, 50, 100, 8), ("2025-10-01", 1, 50, 25, 50, 11),
            ("2025-11-01", 0, 20, 20, 100, 9),
        ]:
            add_cohort(conn, "org-a", month, number, size, retained, rate, 0, ltv)
        add_cohort(conn, "org-b", "2025-10-01", 0, 7777, 7777, 100, 0, 7777.77)
        users = [f"u{i}" for i in range(6)]
        for u in users:
            conn.execute(sa.text("INSERT INTO users (id, tenant_id) VALUES (:u, 'org-a')"), {"u": u})
        conn.execute(sa.text("INSERT INTO users (id, tenant_id) VALUES ('b1', 'org-b')"))
        # Signups: 4 in week 45, 2 in week 44 (+100.0 %).
        for i, u in enumerate(users):
            add_event(conn, f"s{i}", "org-a", "user_signup", {}, u,
                      dt.datetime(2025, 11, 4 + i % 4, 12) if i < 4 else dt.datetime(2025, 10, 30, 12))
        # Tournaments created in week 45: 3 single elimination, 1 swiss (t1 sent twice: counted once).
        for i, (tid, fmt) in enumerate([("t1", "single_elimination"), ("t1", "single_elimination"),
                                        ("t2", "single_elimination"), ("t3", "single_elimination"),
                                        ("t4", "swiss")]):
            add_event(conn, f"t{i}", "org-a", "tournament_created", {"tournament_id": tid, "format": fmt},
                      None, dt.datetime(2025, 11, 5, 10))
        add_event(conn, "b-t", "org-b", "tournament_created", {"tournament_id": "bt", "format": "bravo_format"},
                  None, dt.datetime(2025, 11, 5, 10))
    return engine


@pytest.fixture
def org_a(engine):
    """One organization and no aggregates: for tests about delivery, not content (renders fast)."""
    with engine.begin() as conn:
        add_org(conn, "org-a", "Acme")
    return engine


def delivery_rows(engine, report_id):
    with engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT * FROM report_deliveries WHERE report_id = :id ORDER BY scheduled_for"), {"id": report_id}
        ).mappings().all()


def report_row(engine, report_id):
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT * FROM scheduled_reports WHERE id = :id"), {"id": report_id}).mappings().one()


def text_parts(message) -> str:
    return "\n".join(part.get_content() for part in message.walk() if part.get_content_maintype() == "text")


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
    assert len(images) == 4  # MRR trend, revenue by day, retention heat table, tournaments by format
    for image in images:
        assert image.get_content().startswith(b"\x89PNG")
        assert f"cid:{image['Content-ID'].strip('<>')}" in html

    attachments = {p.get_filename(): p.get_content() for p in message.iter_attachments()}
    assert set(attachments) == {
        "revenue_aggregates_2025-11-03_2025-11-09.csv",
        "user_cohorts_2025-11-03_2025-11-09.csv",
        "tournament_aggregates_2025-11-03_2025-11-09.csv",
    }
    with tenants.connect() as conn:
        expected_revenue = conn.execute(sa.text(
            f"SELECT period_type, period_start, period_end, {', '.join(REVENUE_COLUMNS)} FROM revenue_aggregates "
            "WHERE tenant_id = 'org-a' AND period_start >= '2025-10-27'")).all()
        expected_cohorts = conn.execute(sa.text(
            "SELECT cohort_month, month_number, retention_rate, ltv FROM user_cohorts "
            "WHERE tenant_id = 'org-a' AND NOT (cohort_month = '2025-09-01' AND month_number = 3)")).all()
    revenue_csv = list(csv.DictReader(io.StringIO(attachments["revenue_aggregates_2025-11-03_2025-11-09.csv"])))
    assert {(r["period_type"], r["period_start"], r["mrr"], r["total_revenue"], r["refund_amount"]) for r in revenue_csv} == {
        (r.period_type, r.period_start.isoformat(), str(r.mrr), str(r.total_revenue), str(r.refund_amount))
        for r in expected_revenue}
    assert len(revenue_csv) == len(expected_revenue) == 9  # 2 weeks + 7 days
    cohort_csv = list(csv.DictReader(io.StringIO(attachments["user_cohorts_2025-11-03_2025-11-09.csv"])))
    assert {(r["cohort_month"], int(r["month_number"]), r["retention_rate"], r["ltv"]) for r in cohort_csv} == {
        (r.cohort_month.isoformat(), r.month_number, str(r.retention_rate), str(r.ltv)) for r in expected_cohorts}

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
