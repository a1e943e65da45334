"""Managing a report from the command line: `reports edit` (each field, checked as `add` checks it,
recorded), `resume` of a report nobody receives, `list` with deliveries and unsubscribes apart,
and the exit codes of the README (0 done, 2 a value refused in one line, 1 any other failure)."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from .support import add_report, report_row
from .test_reports_cli import run  # noqa: F401


def _changes(engine, report_id):
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT changed_by, changes FROM report_changes WHERE report_id = :id "
                                    "ORDER BY id"), {"id": report_id}).all()


def _channels(engine, report_id):
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT id, kind, url FROM report_channels WHERE report_id = :id ORDER BY kind"),
                            {"id": report_id}).all()


def test_edit_changes_each_field_and_records_the_change(run, engine):  # noqa: F811
    with engine.begin() as conn:
        add_report(conn, "r1", recipients=["ann@example.com", "bob@example.org"],
                   parameters={"send_time": "08:00", "day_of_week": 1})
    code, out = run("edit", "r1", "--name", "Monthly KPIs", "--frequency", "monthly", "--to", "Cy@Example.com",
                    "--remove", "ANN@example.com", "--timezone", "Asia/Tokyo", "--at", "07:15", "--day-of-month", "31",
                    "--lookback", "2", "--parameters", '{"cohorts": 3}', "--pdf", "--skip-empty",
                    "--add-webhook", "https://hooks.example.com/in", "--add-slack", "https://hooks.slack.com/services/T/B/x")
    assert code == 0, out
    assert out.startswith("edited r1: name, frequency, recipients, parameters, channels_added changed; next delivery ")
    assert "signing secret" in out  # the webhook's, as add-channel prints it
    row = report_row(engine, "r1")
    assert (row["name"], row["frequency"], row["recipients"]) == ("Monthly KPIs", "monthly", ["bob@example.org", "Cy@example.com"])
    assert row["parameters"] == {"send_time": "07:15:00", "day_of_week": 1, "timezone": "Asia/Tokyo", "day_of_month": 31,
                                 "lookback_periods": 2, "cohorts": 3, "pdf": True, "skip_empty": True}
    # The new schedule: the 31st (or the month's last day) at 07:15 in Tokyo, 22:15 UTC the day before.
    assert row["next_run_at"].time() == dt.time(22, 15) and row["next_run_at"] > dt.datetime.now(dt.UTC).replace(tzinfo=None)
    assert [kind for _, kind, _ in _channels(engine, "r1")] == ["slack", "webhook"]
    [(by, changes)] = _changes(engine, "r1")
    assert by
    assert changes["name"] == {"from": "Weekly KPIs", "to": "Monthly KPIs"}
    assert changes["recipients"] == {"from": ["ann@example.com", "bob@example.org"],
                                     "to": ["bob@example.org", "Cy@example.com"]}  # normalised as add does
    assert [c["kind"] for c in changes["channels_added"]] == ["webhook", "slack"]

    # Removing a channel, and only a name: the schedule stays where it is.
    [(slack_id, _, _), _] = _channels(engine, "r1")
    before = report_row(engine, "r1")["next_run_at"]
    code, out = run("edit", "r1", "--remove-channel", slack_id, "--name", "KPIs")
    assert code == 0, out
    assert report_row(engine, "r1")["next_run_at"] == before
    assert _changes(engine, "r1")[-1][1] == {"name": {"from": "Monthly KPIs", "to": "KPIs"}, "channels_removed": [slack_id]}


@pytest.mark.parametrize(
    "args, message",
    [
        # The same refusals as `add` (test_reports_cli.py), word for word.
        (["--to", "not-an-address"], "recipients[0]: 'not-an-address' is not a valid email address"),
        (["--name", "x\r\nBcc: eve@example.net"], "name: must not contain line breaks"),
        (["--timezone", "Mars/Olympus"], "unknown IANA time zone 'Mars/Olympus'"),
        (["--parameters", '{"lookback": 2}'], "parameters.lookback: Extra inputs"),
        (["--at", "8:00"], "'8:00' is not a time written HH:MM"),
        (["--day-of-week", "8"], "8 is not in the range 1<=x<=7"),
        (["--frequency", "hourly"], "'hourly' is not one of"),
        (["--add-webhook", "ftp://hooks.example.com/in"], "Invalid value for '--add-webhook': must be an http(s) URL"),
        (["--add-slack", "http://hooks.slack.com/x"], "Invalid value for '--add-slack': a Slack incoming webhook URL starts with https://"),
        (["--remove", "ann@example.com", "--remove", "bob@example.org"], "recipients: give at least one email address"),
        (["--remove", "zed@example.com"], "Invalid value for '--remove': 'zed@example.com' is not a recipient"),
        (["--remove-channel", "ch_nope"], "Invalid value for '--remove-channel': 'ch_nope' is not a channel of r1"),
        ([], "nothing to change"),
    ],
)
def test_edit_refuses_bad_values_in_one_line_with_exit_2_and_changes_nothing(run, engine, args, message):  # noqa: F811
    with engine.begin() as conn:
        add_report(conn, "r1", recipients=["ann@example.com", "bob@example.org"])
    before = dict(report_row(engine, "r1"))
    code, out = run("edit", "r1", *args)
    assert code == 2 and message in out, out
    assert len(out.strip().splitlines()) == 1 and out.startswith("Error: "), out
    assert dict(report_row(engine, "r1")) == before and _changes(engine, "r1") == []


def test_edit_of_a_report_that_does_not_exist_exits_1(run):  # noqa: F811
    code, out = run("edit", "nope", "--name", "x")
    assert (code, out.strip()) == (1, "Error: no report with id 'nope' (see `analytics-pipeline reports list`)")


def test_resume_refuses_a_report_without_recipients_and_edit_lets_it_resume(run, engine):  # noqa: F811
    with engine.begin() as conn:
        add_report(conn, "r1", is_active=False)
        conn.execute(sa.text("UPDATE scheduled_reports SET recipients = '{}' WHERE id = 'r1'"))
    code, out = run("resume", "r1")
    assert code == 2 and len(out.strip().splitlines()) == 1
    assert out.startswith("Error: r1 has no recipients: add one first (`analytics-pipeline reports edit r1 --to")
    assert not report_row(engine, "r1")["is_active"]
    assert run("edit", "r1", "--to", "ann@example.com")[0] == 0
    code, out = run("resume", "r1")
    assert code == 0 and out.startswith("resumed r1: next delivery ")
    assert report_row(engine, "r1")["is_active"]


def test_list_shows_the_last_delivery_and_the_unsubscribes_apart(run, engine):  # noqa: F811
    with engine.begin() as conn:
        add_report(conn, "r1")
        for scheduled_for, status, trigger, recipient in (
                ("2025-11-03 08:00", "sent", "schedule", "{ann@example.com,bob@example.org}"),
                ("2025-11-05 10:30", "unsubscribed", "unsubscribe", "{cy@example.com}"),
                ("2025-11-06 11:00", "unsubscribed", "unsubscribe", "{dee@example.com}")):
            conn.execute(sa.text(
                "INSERT INTO report_deliveries (report_id, tenant_id, scheduled_for, period_start, period_end, status, "
                "trigger, recipients, attempts) VALUES ('r1', 'org-a', :at, '2025-10-27', '2025-11-02', :status, "
                ":trigger, CAST(:rcpt AS text[]), 1)"),
                {"at": scheduled_for, "status": status, "trigger": trigger, "rcpt": recipient})
    code, out = run("list")
    assert code == 0, out
    assert "last delivery: sent (2025-11-03 08:00 UTC)  unsubscribed: 2 (latest 2025-11-06 11:00 UTC)" in out


def test_add_channel_names_the_option_of_a_url_it_refuses(run, engine):  # noqa: F811
    with engine.begin() as conn:
        add_report(conn, "r1")
    code, out = run("add-channel", "r1", "--kind", "webhook", "--url", "ftp://hooks.example.com/in")
    assert (code, out.strip()) == (
        2, "Error: Invalid value for '--url': must be an http(s) URL, got 'ftp://hooks.example.com/in'")
    assert _channels(engine, "r1") == []


def test_send_now_of_a_report_skipped_for_no_data_exits_0_and_says_so(run, engine, tmp_path):  # noqa: F811
    with engine.begin() as conn:
        add_report(conn, "r1", report_type="revenue_summary", parameters={"skip_empty": True})
    code, out = run("send-now", "r1")
    assert code == 0, out
    assert "nothing sent" in out and len(out.strip().splitlines()) == 1
    assert not (tmp_path / "outbox").exists() or not list((tmp_path / "outbox").glob("*.eml"))
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT status FROM report_deliveries")).scalar_one() == "skipped"
