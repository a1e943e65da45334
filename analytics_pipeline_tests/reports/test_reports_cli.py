"""`analytics-pipeline reports ...`: the same checks as deliveries, clear refusals, send-now that
leaves the schedule alone; and the migration's refusal of rows the CHECK constraints would reject."""

from __future__ import annotations

import datetime as dt
import email
from email import policy

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from analytics_pipeline.cli import main
from analytics_pipeline.core import migrate

from .support import add_org, add_report, report_row


@pytest.fixture
def run(db_url, org_a, tmp_path, monkeypatch):
    for variable in ("SMTP_HOST", "MAIL_FROM", "SMTP_SECURITY", "SMTP_PORT"):
        monkeypatch.delenv(variable, raising=False)
    env = {"DATABASE_URL": db_url, "ANALYTICS_HOME": str(tmp_path)}

    def invoke(*args):
        result = CliRunner().invoke(main, ["reports", *args], env=env, catch_exceptions=False)
        return result.exit_code, result.output

    return invoke


def _only_report(engine):
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT * FROM scheduled_reports")).mappings().one()


def test_add_writes_a_validated_report_with_its_first_occurrence(run, engine):
    code, out = run("add", "--tenant", "org-a", "--name", "Monthly revenue", "--type", "revenue_summary",
                    "--frequency", "monthly", "--to", "Ann@Example.com", "--to", "bob@example.org",
                    "--timezone", "Europe/Berlin", "--at", "07:30", "--day-of-month", "31")
    assert code == 0, out
    row = _only_report(engine)
    assert out.startswith(f"added {row['id']}: first delivery ")
    assert row["recipients"] == ["Ann@example.com", "bob@example.org"]
    assert row["parameters"] == {"timezone": "Europe/Berlin", "send_time": "07:30:00", "day_of_month": 31}
    assert row["is_active"] and row["next_run_at"] > dt.datetime.now(dt.UTC).replace(tzinfo=None)
    # 07:30 in Berlin is 05:30 or 06:30 UTC, on the 31st or a shorter month's last day.
    assert row["next_run_at"].time() in (dt.time(5, 30), dt.time(6, 30))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--to", "not-an-address"], "recipients[0]: 'not-an-address' is not a valid email address"),
        (["--to", "a@example.com", "--name", "x\r\nBcc: eve@example.net"], "name: must not contain line breaks"),
        (["--to", "a@example.com", "--timezone", "Mars/Olympus"], "unknown IANA time zone 'Mars/Olympus'"),
        (["--to", "a@example.com", "--parameters", '{"lookback": 2}'], "parameters.lookback: Extra inputs"),
        (["--to", "a@example.com", "--tenant", "nobody"], "--tenant: no organization with id 'nobody'"),
    ],
)
def test_add_refuses_bad_configuration_with_a_clear_message(run, engine, args, message):
    base = {"--tenant": "org-a", "--name": "Weekly", "--type": "comprehensive", "--frequency": "weekly"}
    for i in range(0, len(args), 2):
        base.pop(args[i], None)
    code, out = run("add", *[x for kv in base.items() for x in kv], *args)
    # A refused value exits 2; an organization that does not exist, like a report, exits 1 (README).
    assert code == (1 if "--tenant" in args else 2) and message in out
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM scheduled_reports")).scalar() == 0


def test_add_refuses_an_unknown_type_before_touching_the_database(run):
    code, out = run("add", "--tenant", "org-a", "--name", "x", "--type", "everything", "--frequency", "weekly",
                    "--to", "a@example.com")
    assert code == 2 and "'everything' is not one of" in out


def test_list_pause_resume_delete(run, engine):
    past = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(days=3)
    with engine.begin() as conn:
        add_report(conn, "r1", next_run_at=past, parameters={"send_time": "08:00", "day_of_week": 1})
    code, out = run("list")
    assert code == 0 and "r1  org-a  'Weekly KPIs'  comprehensive weekly  active" in out
    assert run("pause", "r1")[0] == 0
    assert not report_row(engine, "r1")["is_active"]
    assert "paused" in run("list", "--tenant", "org-a")[1]
    # Resuming does not send what was missed while paused: the next Monday 08:00 UTC.
    assert run("resume", "r1")[0] == 0
    row = report_row(engine, "r1")
    assert row["is_active"] and row["next_run_at"] > past + dt.timedelta(days=3)
    assert row["next_run_at"].isoweekday() == 1 and row["next_run_at"].time() == dt.time(8)
    assert run("delete", "r1", "--yes")[0] == 0
    assert run("list")[1].strip() == "no reports"
    code, out = run("pause", "r1")
    assert code == 1 and "no report with id 'r1'" in out


def test_send_now_delivers_once_without_moving_the_schedule(run, engine, tmp_path):
    future = dt.datetime(2030, 1, 7, 8)
    with engine.begin() as conn:
        add_report(conn, "r1", report_type="revenue_summary", next_run_at=future)
    code, out = run("send-now", "r1")
    assert code == 0, out
    assert "sent to 2 of 2 recipients" in out and str(tmp_path / "outbox") in out
    [path, _] = sorted((tmp_path / "outbox").glob("*.eml"))  # one per recipient
    message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    assert message["Subject"].startswith("Acme: Weekly KPIs – week ")
    row = report_row(engine, "r1")
    assert (row["next_run_at"], row["last_run_at"]) == (future, None)
    with engine.connect() as conn:
        trigger, status = conn.execute(sa.text("SELECT trigger, status FROM report_deliveries")).one()
    assert (trigger, status) == ("manual", "sent")


def test_send_now_of_an_invalid_report_fails_and_records_why(run, engine):
    with engine.begin() as conn:
        add_report(conn, "r1", recipients=["nobody"])
    code, out = run("send-now", "r1")
    assert code == 1 and "recipients[0]: 'nobody' is not a valid email address" in out
    with engine.connect() as conn:
        status, error = conn.execute(sa.text("SELECT status, last_error FROM report_deliveries")).one()
    assert status == "failed" and "recipients[0]" in error


def test_migration_refuses_rows_the_check_constraints_would_reject(db_url, engine):
    migrate.downgrade(db_url, "0006_tournament_cohort_state")
    with engine.begin() as conn:
        add_org(conn, "org-a", "Acme")
        add_report(conn, "odd", report_type="everything")
    with pytest.raises(RuntimeError, match=r"scheduled_reports.report_type must be one of .* 'odd' \('everything'\)"):
        migrate.upgrade(db_url)


def _add(run, *args):
    return run("add", "--tenant", "org-a", "--name", "Weekly", "--type", "comprehensive", "--frequency", "weekly",
               *args)


def test_at_is_stored_as_the_local_time_given(run, engine):
    code, out = _add(run, "--to", "a@example.com", "--at", "23:59", "--timezone", "Asia/Kolkata")
    assert code == 0, out
    row = _only_report(engine)
    assert row["parameters"]["send_time"] == "23:59:00" and row["parameters"]["timezone"] == "Asia/Kolkata"
    # 23:59 in Kolkata (UTC+05:30) is 18:29 UTC.
    assert row["next_run_at"].time() == dt.time(18, 29)


@pytest.mark.parametrize("at", ["08:00+05:00", "08:00:00.5", "08:00:00", "8:00"])
def test_at_other_than_hh_mm_is_refused(run, engine, at):
    code, out = _add(run, "--to", "a@example.com", "--at", at)
    assert code == 2 and "Invalid value for '--at'" in out and "HH:MM" in out
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM scheduled_reports")).scalar() == 0


def test_a_boolean_parameter_is_refused_and_a_number_stored_as_a_number(run, engine):
    code, out = _add(run, "--to", "a@example.com", "--parameters", '{"cohorts": true}')
    assert code == 2 and "parameters.cohorts: must be a whole number, not true" in out
    code, out = _add(run, "--to", "a@example.com", "--parameters", '{"cohorts": 24}')
    assert code == 0, out
    stored = _only_report(engine)["parameters"]["cohorts"]
    assert stored == 24 and type(stored) is int


def test_recipients_are_deduplicated_case_insensitively_before_the_limit(run, engine):
    addresses = [f"person{i}@example.com" for i in range(50)]
    too_many = [x for a in [*addresses, "person50@example.com"] for x in ("--to", a)]
    code, out = _add(run, *too_many)
    assert code == 2 and "at most 50 distinct addresses, got 51" in out
    with_variant = [x for a in [*addresses, "PERSON7@Example.com"] for x in ("--to", a)]
    code, out = _add(run, *with_variant)
    assert code == 0, out
    assert _only_report(engine)["recipients"] == addresses


@pytest.mark.parametrize("name", ["Weekly\u2028KPIs", "Weekly\x85KPIs", "Weekly\u2029KPIs"])
def test_send_now_of_a_report_named_with_a_line_separator_fails_in_one_line(run, engine, name):
    """A row the platform wrote directly: the delivery fails with the reason, no traceback."""
    with engine.begin() as conn:
        add_report(conn, "r1", name=name)
    code, out = run("send-now", "r1")
    assert code == 1 and "Traceback" not in out
    assert len(out.strip().splitlines()) == 1 and "name: must not contain line breaks" in out
    with engine.connect() as conn:
        status, error = conn.execute(sa.text("SELECT status, last_error FROM report_deliveries")).one()
    assert status == "failed" and f"U+{ord(name[6]):04X}" in error
