"""Webhook and Slack channels against a real HTTP server on loopback (http.server in a thread):
the signature verifies with the channel's secret, the payload holds the report's numbers and
rows, a failing receiver is retried with backoff, and each channel gets each occurrence once,
without the email being sent again. And the PDF attachment, read back with pypdf."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pypdf
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from analytics_pipeline.cli import main
from analytics_pipeline.reports.claims import due_deliveries
from analytics_pipeline.reports.delivery import deliver_scheduled

from .support import DUE, NOW, RECIPIENTS, add_report, delivery_rows, report_row

pytestmark = pytest.mark.usefixtures("delivery_settings")

SECRET = "9f1c2b7a4d0e6f3859a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f607"


class Receiver:
    """What the loopback server received; `replies` are the statuses of the next requests (then 200)."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.replies: list[int] = []
        self.url = ""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    received = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
            status = received.replies.pop(0) if received.replies else 200
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):  # keep the test output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    received.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/report"
    yield received
    server.shutdown()
    server.server_close()


def add_channel(conn, channel_id: str, report_id: str, url: str, kind: str = "webhook", secret: str | None = SECRET):
    conn.execute(
        sa.text("INSERT INTO report_channels (id, report_id, tenant_id, kind, url, secret) "
                "SELECT :id, :report, tenant_id, :kind, :url, :secret FROM scheduled_reports WHERE id = :report"),
        {"id": channel_id, "report": report_id, "kind": kind, "url": url, "secret": secret},
    )


def verify(headers: dict[str, str], body: bytes, secret: str) -> bool:
    """What a receiver does, written from the documented scheme: HMAC-SHA256 of "<timestamp>.<body>"."""
    expected = hmac.new(secret.encode(), headers["x-report-timestamp"].encode() + b"." + body, hashlib.sha256)
    return hmac.compare_digest(headers["x-report-signature"], "sha256=" + expected.hexdigest())


def test_webhook_is_signed_retried_with_backoff_and_delivered_once(tenants, database, mail, inbox, receiver):
    with tenants.begin() as conn:
        add_report(conn, "r1")
        add_channel(conn, "ch_hook", "r1", receiver.url)
    receiver.replies = [503]

    first = deliver_scheduled(database, mail, "r1", now=NOW)
    assert first.status == "sent"  # the email went out
    assert first.channels["ch_hook"].startswith("retrying: temporary failure, attempt 1 of 5: webhook 127.0.0.1")
    rows = {r["channel"]: r for r in delivery_rows(tenants, "r1")}
    assert (rows["email"]["status"], rows["ch_hook"]["status"]) == ("sent", "retrying")
    assert rows["ch_hook"]["next_attempt_at"] == NOW + dt.timedelta(minutes=5)
    assert report_row(tenants, "r1")["next_run_at"] == DUE  # the occurrence is not done yet

    with tenants.connect() as conn:
        assert due_deliveries(conn, NOW + dt.timedelta(minutes=4)) == []
        [retry] = due_deliveries(conn, NOW + dt.timedelta(minutes=5))
    assert retry.run_key == f"r1:{DUE.isoformat()}:attempt-3"  # its own key: the email's attempt counts too
    second = deliver_scheduled(database, mail, "r1", now=NOW + dt.timedelta(minutes=6))
    assert second.channels == {"ch_hook": "sent: delivered"}
    assert deliver_scheduled(database, mail, "r1", now=NOW + dt.timedelta(minutes=7)).status == "skipped"

    assert len(inbox.received) == len(RECIPIENTS)  # the email was not sent again
    assert len(receiver.requests) == 2  # the refused one and the accepted one
    (refused_headers, _), (headers, body) = receiver.requests
    assert refused_headers["x-report-delivery"] == headers["x-report-delivery"] == f"r1:{DUE.isoformat()}Z:ch_hook"
    assert verify(headers, body, SECRET)
    assert not verify(headers, body, SECRET[::-1])
    assert not verify(headers, body.replace(b"12500.00", b"99999.00"), SECRET)

    payload = json.loads(body)
    assert payload["report"] == {"id": "r1", "tenant_id": "org-a", "name": "Weekly KPIs", "type": "comprehensive",
                                 "frequency": "weekly"}
    assert (payload["period"]["start"], payload["period"]["end"]) == ("2025-11-03", "2025-11-09")
    mrr = next(f for f in payload["sections"]["revenue"]["figures"] if f["metric"] == "mrr")
    assert (mrr["current"], mrr["previous"], mrr["change_pct"]) == ("12500.00", "10000.00", "25.0")
    revenue = payload["tables"]["revenue_aggregates"]
    assert len(revenue["rows"]) == 9  # 2 weeks + 7 days, as in the email's CSV
    assert "Bravo" not in body.decode() and "777777.77" not in body.decode()

    rows = {r["channel"]: r for r in delivery_rows(tenants, "r1")}
    assert (rows["ch_hook"]["status"], rows["ch_hook"]["attempts"]) == ("sent", 2)
    assert report_row(tenants, "r1")["next_run_at"] == DUE + dt.timedelta(days=7)


def test_a_receiver_refusing_for_good_fails_that_channel_only(org_a, database, mail, inbox, receiver):
    with org_a.begin() as conn:
        add_report(conn, "r1", report_type="revenue_summary")
        add_channel(conn, "ch_hook", "r1", receiver.url)
    receiver.replies = [410]
    outcome = deliver_scheduled(database, mail, "r1", now=NOW)
    assert outcome.status == "sent"
    assert outcome.channels["ch_hook"] == "failed: failed: webhook 127.0.0.1:" + receiver.url.split(":")[2].split("/")[0] + " replied 410 Gone"
    assert len(receiver.requests) == 1
    assert report_row(org_a, "r1")["next_run_at"] == DUE + dt.timedelta(days=7)


def test_slack_gets_the_same_numbers_as_a_message(tenants, database, mail, inbox, receiver):
    with tenants.begin() as conn:
        add_report(conn, "r1", report_type="revenue_summary")
        add_channel(conn, "ch_slack", "r1", receiver.url, kind="slack", secret=None)
    assert deliver_scheduled(database, mail, "r1", now=NOW).channels == {"ch_slack": "sent: delivered"}
    [(headers, body)] = receiver.requests
    message = json.loads(body)
    assert message["text"] == "Acme Esports: Weekly KPIs – week 45 of 2025 (3 Nov – 9 Nov 2025)"
    text = json.dumps(message["blocks"], ensure_ascii=False)
    # MRR 10,000 -> 12,500 is up 25.0 % and good; refunds 0 -> 2 are up (no percent of 0) and bad.
    assert "MRR (end of period): *12,500.00 USD* (previous 10,000.00 USD, ▲ +25.0 % :large_green_circle: better)" in text
    assert "Refunds: *2* (previous 0, ▲ – :red_circle: worse)" in text
    assert "x-report-signature" not in headers


def test_add_channel_command_prints_the_secret_the_signature_uses(tenants, db_url, tmp_path):
    with tenants.begin() as conn:
        add_report(conn, "r1")
    env = {"DATABASE_URL": db_url, "ANALYTICS_HOME": str(tmp_path)}
    result = CliRunner().invoke(main, ["reports", "add-channel", "r1", "--kind", "webhook", "--url",
                                       "https://hooks.example.com/in"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    with tenants.connect() as conn:
        channel_id, secret = conn.execute(sa.text("SELECT id, secret FROM report_channels")).one()
    assert f"added {channel_id} (webhook) to r1" in result.output and secret in result.output
    bad = CliRunner().invoke(main, ["reports", "add-channel", "r1", "--kind", "slack", "--url", "http://x"], env=env)
    assert bad.exit_code == 2 and "Invalid value for '--url': a Slack incoming webhook URL starts with https://" in bad.output
    assert CliRunner().invoke(main, ["reports", "remove-channel", channel_id], env=env).exit_code == 0
    with tenants.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM report_channels")).scalar() == 0


# --- PDF ---------------------------------------------------------------------------------------------


def test_pdf_attachment_has_the_numbers_and_the_charts(tenants, database, mail, inbox):
    with tenants.begin() as conn:
        add_report(conn, "r1", parameters={"pdf": True})
    assert deliver_scheduled(database, mail, "r1", now=NOW).status == "sent"
    message = inbox.messages()[0]
    [pdf] = [p for p in message.iter_attachments() if p.get_content_type() == "application/pdf"]
    assert pdf.get_filename() == "report_2025-11-03_2025-11-09.pdf"
    document = pypdf.PdfReader(io.BytesIO(pdf.get_content()))
    text = " ".join(page.extract_text() for page in document.pages)
    for figure in ("Acme Esports", "Weekly KPIs", "12,500.00", "+25.0 %", "14,000.00", "80.0 %"):
        assert figure in text, figure
    # The three charts of the email, as images in the PDF (the retention table is HTML, not an image).
    # (Pages may share one resource dictionary, so images are told apart by name.)
    assert len({image.name for page in document.pages for image in page.images}) == 3
    assert "attached as PDF: report_2025-11-03_2025-11-09.pdf" in message.get_body(("plain",)).get_content()


def test_a_table_above_the_attachment_limit_is_linked_not_inlined(tenants, database, mail, inbox, receiver, monkeypatch):
    monkeypatch.setenv("REPORT_ATTACHMENT_MAX_BYTES", "700")  # the revenue CSV is about 1 kB
    with tenants.begin() as conn:
        add_report(conn, "r1", report_type="revenue_summary")
        add_channel(conn, "ch_hook", "r1", receiver.url)
    deliver_scheduled(database, mail, "r1", now=NOW)
    [(_, body)] = receiver.requests
    assert json.loads(body)["tables"]["revenue_aggregates"] == {
        "columns": ["period_type", "period_start", "period_end", "mrr", "arr", "new_revenue", "expansion_revenue",
                    "contraction_revenue", "reactivation_revenue", "churned_revenue", "total_revenue",
                    "payment_count", "payment_success_count", "refund_count", "refund_amount",
                    "active_customers", "new_customers", "reactivated_customers", "churned_customers",
                    "opening_mrr", "opening_customers", "arpa", "logo_churn_rate", "gross_mrr_churn_rate",
                    "net_mrr_churn_rate", "grr", "nrr", "quick_ratio", "ttm_nrr", "ttm_grr"],
        "row_count": 9,
        "csv_url": "https://analytics.example.com/v1/revenue?format=csv&period_type=week&from=2025-10-27&to=2025-11-09",
    }


def test_a_channel_removed_while_waiting_for_its_retry_does_not_hold_the_schedule(org_a, database, mail, inbox, receiver):
    with org_a.begin() as conn:
        add_report(conn, "r1", report_type="revenue_summary")
        add_channel(conn, "ch_hook", "r1", receiver.url)
    receiver.replies = [503]
    deliver_scheduled(database, mail, "r1", now=NOW)
    with org_a.begin() as conn:
        conn.execute(sa.text("DELETE FROM report_channels WHERE id = 'ch_hook'"))
        [retry] = due_deliveries(conn, NOW + dt.timedelta(minutes=5))
    outcome = deliver_scheduled(database, mail, "r1", now=NOW + dt.timedelta(minutes=5))
    assert outcome.status == "skipped" and outcome.next_run_at == DUE + dt.timedelta(days=7)
    rows = {r["channel"]: r for r in delivery_rows(org_a, "r1")}
    assert rows["ch_hook"]["status"] == "failed" and "removed" in rows["ch_hook"]["last_error"]
    assert report_row(org_a, "r1")["next_run_at"] == DUE + dt.timedelta(days=7)
    assert len(inbox.received) == len(RECIPIENTS) and len(receiver.requests) == 1
