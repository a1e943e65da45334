"""Report links follow the Dashboard API that runs: `dev --api-port 8102` gives its processes
DASHBOARD_URL on that port (unless it is set), and the emails' links use it."""

from __future__ import annotations

import pytest

from analytics_pipeline.dev.stack import report_links_env
from analytics_pipeline.reports.delivery import deliver_scheduled

from .support import NOW, add_report


def test_dev_derives_dashboard_url_from_the_api_port(monkeypatch):
    monkeypatch.delenv("DASHBOARD_URL", raising=False)
    assert report_links_env(8102) == {"DASHBOARD_URL": "http://127.0.0.1:8102"}
    monkeypatch.setenv("DASHBOARD_URL", "https://analytics.example.com")
    assert report_links_env(8102) == {"DASHBOARD_URL": "https://analytics.example.com"}  # an operator's wins


@pytest.mark.usefixtures("delivery_settings")
def test_a_report_sent_under_devs_environment_links_the_api_on_its_port(org_a, database, mail, inbox, monkeypatch):
    monkeypatch.delenv("DASHBOARD_URL", raising=False)
    for name, value in report_links_env(8102).items():
        monkeypatch.setenv(name, value)
    with org_a.begin() as conn:
        add_report(conn, "r1", report_type="revenue_summary", recipients=["ann@example.com"])
    assert deliver_scheduled(database, mail, "r1", now=NOW).status == "sent"
    [message] = inbox.messages()
    assert message["List-Unsubscribe"].startswith("<http://127.0.0.1:8102/v1/unsubscribe?token=")
    assert "localhost:8000" not in message.as_string()
