"""Unsubscribe end to end: the token in the header of the email a real SMTP server on loopback
received, passed to `unsubscribe`, removes that recipient only and is logged; tampered, foreign
and expired tokens are refused. And the preview: the same message as the delivery, nothing sent,
nothing logged."""

from __future__ import annotations

import datetime as dt
import email
from email import policy
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from click.testing import CliRunner

from analytics_pipeline.cli import main
from analytics_pipeline.reports.delivery import deliver_scheduled
from analytics_pipeline.reports.preview import preview
from analytics_pipeline.reports.unsubscribe import InvalidToken, describe, make_token, unsubscribe

from .support import DUE, NOW, RECIPIENTS, add_report, delivery_rows, report_row

pytestmark = pytest.mark.usefixtures("delivery_settings")


def _token(message) -> str:
    url = message["List-Unsubscribe"].strip()
    assert url.startswith("<https://analytics.example.com/v1/unsubscribe?token=") and url.endswith(">")
    return parse_qs(urlsplit(url[1:-1]).query)["token"][0]


def _received(inbox, recipient):
    [message] = [m for m in inbox.messages() if m["To"] == recipient]
    return message


def _now() -> dt.datetime:
    # Tokens expire 90 days after the occurrence they were sent for: these deliveries are recent.
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def test_the_link_in_the_email_unsubscribes_that_recipient_only(org_a, database, mail, inbox):
    now = _now()
    with org_a.begin() as conn:
        add_report(conn, "r1", report_type="revenue_summary", frequency="daily", next_run_at=now - dt.timedelta(minutes=1))
    assert deliver_scheduled(database, mail, "r1", now=now).status == "sent"
    bob = _received(inbox, "bob@example.org")
    assert bob["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # On the wire the header is the plain URL, as mail clients read it (not an RFC 2047 encoded word).
    [raw] = [raw for to, raw in inbox.received if to == ["bob@example.org"]]
    assert b"\r\nList-Unsubscribe: <https://analytics.example.com/v1/unsubscribe?token=" in raw
    token = _token(bob)
    assert f"https://analytics.example.com/v1/unsubscribe?token={token}" in bob.get_body(("plain",)).get_content()
    assert _token(_received(inbox, "ann@example.com")) != token

    assert describe(database, token).status == "unsubscribed"  # the confirmation page changes nothing
    assert report_row(org_a, "r1")["recipients"] == RECIPIENTS
    result = unsubscribe(database, token)
    assert (result.status, result.recipient, result.report_paused) == ("unsubscribed", "bob@example.org", False)
    assert report_row(org_a, "r1")["recipients"] == ["ann@example.com"]
    assert unsubscribe(database, token).status == "already_unsubscribed"
    log = [r for r in delivery_rows(org_a, "r1") if r["trigger"] == "unsubscribe"]
    assert [(r["status"], r["recipients"]) for r in log] == [("unsubscribed", ["bob@example.org"])]

    # The next occurrence goes to the one recipient left.
    inbox.received.clear()
    assert deliver_scheduled(database, mail, "r1", now=now + dt.timedelta(days=1)).status == "sent"
    assert [to for to, _ in inbox.received] == [["ann@example.com"]]


def test_tampered_foreign_and_expired_tokens_are_refused(org_a, database, mail, inbox, monkeypatch):
    now = _now()
    with org_a.begin() as conn:
        add_report(conn, "r1", report_type="revenue_summary", next_run_at=now - dt.timedelta(minutes=1))
    deliver_scheduled(database, mail, "r1", now=now)
    token = _token(_received(inbox, "ann@example.com"))
    header, claims, signature = token.split(".")
    other = jwt.decode(token, options={"verify_signature": False}) | {"rcp": "bob@example.org"}
    forged_claims = jwt.encode(other, "x" * 40, algorithm="HS256").split(".")[1]
    refused = {
        "signature changed": f"{header}.{claims}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}",
        "claims changed": f"{header}.{forged_claims}.{signature}",
        "another key": jwt.encode(other, "another-secret-of-another-deployment-0123", algorithm="HS256"),
        "expired": make_token("r1", "org-a", "ann@example.com", now - dt.timedelta(days=91)),
        "not a token": "hello",
    }
    for case, bad in refused.items():
        with pytest.raises(InvalidToken, match="expired" if case == "expired" else "not valid"):
            unsubscribe(database, bad)
    assert report_row(org_a, "r1")["recipients"] == RECIPIENTS
    assert not [r for r in delivery_rows(org_a, "r1") if r["trigger"] == "unsubscribe"]


def test_when_the_last_recipient_leaves_the_report_is_paused(org_a, database):
    with org_a.begin() as conn:
        add_report(conn, "r1", recipients=["ann@example.com"])
    result = unsubscribe(database, make_token("r1", "org-a", "ann@example.com", _now()))
    assert result.report_paused
    row = report_row(org_a, "r1")
    assert (row["recipients"], row["is_active"]) == ([], False)


# --- Preview ------------------------------------------------------------------------------------------


def _parts(message):
    # What went through SMTP has CRLF line ends; the content is compared, not the transport's.
    return [(p.get_content_type(), p.get_filename(), p["Content-ID"], p.get_payload(decode=True).replace(b"\r\n", b"\n"))
            for p in message.walk() if not p.is_multipart()]


def test_preview_is_the_message_the_delivery_sends(tenants, database, mail, inbox):
    with tenants.begin() as conn:
        add_report(conn, "r1")
    shown = preview(database, mail, "r1", recipient="bob@example.org", now=NOW)
    assert (shown.scheduled_for, shown.recipient, shown.would_skip) == (DUE, "bob@example.org", False)
    assert inbox.received == [] and delivery_rows(tenants, "r1") == []

    deliver_scheduled(database, mail, "r1", now=NOW)
    sent = _received(inbox, "bob@example.org")
    for header in ("Subject", "From", "To", "Message-ID", "List-Unsubscribe", "List-Unsubscribe-Post", "Date"):
        assert shown.message[header] == sent[header], header
    assert _parts(shown.message) == _parts(sent)
    assert len([p for p in _parts(sent) if p[0] == "image/png"]) == 3  # MRR trend, revenue by day, tournaments by format


def test_preview_command_writes_the_file_and_logs_nothing(tenants, db_url, tmp_path, monkeypatch):
    monkeypatch.delenv("SMTP_HOST", raising=False)
    monkeypatch.delenv("DASHBOARD_URL")  # the outbox of `make dev`: links to the local Dashboard API
    with tenants.begin() as conn:
        add_report(conn, "r1", report_type="tournament_performance", next_run_at=dt.datetime(2030, 1, 7, 8))
    out = tmp_path / "next.eml"
    result = CliRunner().invoke(main, ["reports", "preview", "r1", "--out", str(out)],
                                env={"DATABASE_URL": db_url, "ANALYTICS_HOME": str(tmp_path)}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "ann@example.com's message for 2030-01-07 08:00 UTC" in result.output
    message = email.message_from_bytes(out.read_bytes(), policy=policy.default)
    assert message["Subject"] == "Acme Esports: Weekly KPIs – week 1 of 2030 (31 Dec – 6 Jan 2030)"
    assert message["To"] == "ann@example.com"
    assert message["List-Unsubscribe"].startswith("<http://localhost:8000/v1/unsubscribe?token=")
    assert delivery_rows(tenants, "r1") == []
    assert report_row(tenants, "r1")["next_run_at"] == dt.datetime(2030, 1, 7, 8)
    assert not (tmp_path / "outbox").exists()

    bad = CliRunner().invoke(main, ["reports", "preview", "r1", "--out", str(out), "--recipient", "eve@example.net"],
                             env={"DATABASE_URL": db_url, "ANALYTICS_HOME": str(tmp_path)})
    assert bad.exit_code != 0 and "--recipient: 'eve@example.net' is not a recipient" in bad.output


def test_the_dashboard_api_serves_the_unsubscribe_link(org_a, database, mail, inbox, client):
    now = _now()
    with org_a.begin() as conn:
        add_report(conn, "r1", report_type="revenue_summary", frequency="daily", next_run_at=now - dt.timedelta(minutes=1))
    assert deliver_scheduled(database, mail, "r1", now=now).status == "sent"
    token = _token(_received(inbox, "bob@example.org"))

    # Following the link shows the report and a button, and changes nothing (mail scanners fetch links).
    page = client.get("/v1/unsubscribe", params={"token": token})
    assert page.status_code == 200 and "bob@example.org" in page.text and 'method="post"' in page.text
    assert report_row(org_a, "r1")["recipients"] == RECIPIENTS

    # The mail client's one-click POST (RFC 8058) removes that recipient only, once.
    one_click = {"List-Unsubscribe": "One-Click"}
    done = client.post("/v1/unsubscribe", params={"token": token}, data=one_click)
    assert done.status_code == 200 and "bob@example.org no longer receives" in done.text
    assert report_row(org_a, "r1")["recipients"] == ["ann@example.com"]
    again = client.post("/v1/unsubscribe", params={"token": token}, data=one_click)
    assert again.status_code == 200 and "does not receive" in again.text
    assert report_row(org_a, "r1")["recipients"] == ["ann@example.com"]

    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    for response in (client.get("/v1/unsubscribe", params={"token": tampered}),
                     client.post("/v1/unsubscribe", params={"token": tampered}, data=one_click)):
        assert response.status_code == 400 and tampered not in response.text
    assert report_row(org_a, "r1")["recipients"] == ["ann@example.com"]
