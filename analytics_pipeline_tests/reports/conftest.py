"""Fixtures of the report tests: a mail server on loopback and the mail resource sending to it,
the delivery settings (which the modules that deliver use), the organizations with their
aggregates, and the Dashboard API client."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from analytics_pipeline.core.resources import MailResource

# The Dashboard API on the test's database, which serves the unsubscribe link.
from ..api_support import api_env, client, redis_prefix, redis_server_url  # noqa: F401
from .support import Inbox, add_cohort, add_event, add_org, add_plan, add_revenue, add_tournaments, free_port, smtp

LONG_PLAN = "enterprise-annual-2025-with-priority-support-and-a-dedicated-manager"


@pytest.fixture
def inbox():
    handler = Inbox()
    handler.port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=handler.port)
    controller.start()
    yield handler
    controller.stop()


@pytest.fixture
def delivery_settings(monkeypatch):
    """Report emails link the Dashboard API (unsubscribe, large CSVs): the address recipients use."""
    monkeypatch.setenv("DASHBOARD_URL", "https://analytics.example.com")
    monkeypatch.setenv("UNSUBSCRIBE_SECRET", "unsubscribe-secret-of-the-tests-0123456789")
    monkeypatch.delenv("REPORT_ATTACHMENT_MAX_BYTES", raising=False)


@pytest.fixture
def mail(inbox) -> MailResource:
    return smtp(inbox.port)


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
        # Revenue by plan, adding up to the weeks above. Week 44: starter 4,000 (new 1,000) and pro
        # 6,000 (churned 500). Week 45: a starter customer of 100 upgrades to pro at 300 (a transfer
        # of 100 out of starter into pro, and 200 of pro's expansion, docs/metrics.md#segment-movements);
        # pro: 6,000 + 2,000 new + 500 expansion − 200 churned + 100 in = 8,400 (+40.0 %); starter:
        # 4,000 − 200 contraction − 600 churned − 100 out = 3,100 (−22.5 %); LONG_PLAN: 1,000 new
        # (from 0: no percent). 8,400 + 3,100 + 1,000 = 12,500; churned 200 + 600 = 800.
        add_plan(conn, "org-a", "week", "2025-10-27", "2025-11-02", "starter", mrr=4000, new_revenue=1000)
        add_plan(conn, "org-a", "week", "2025-10-27", "2025-11-02", "pro", mrr=6000, churned_revenue=500)
        add_plan(conn, "org-a", "week", "2025-11-03", "2025-11-09", "pro", mrr=8400, new_revenue=2000,
                 expansion_revenue=500, churned_revenue=200, transfer_in_revenue=100)
        add_plan(conn, "org-a", "week", "2025-11-03", "2025-11-09", "starter", mrr=3100, contraction_revenue=200,
                 churned_revenue=600, transfer_out_revenue=100)
        add_plan(conn, "org-a", "week", "2025-11-03", "2025-11-09", LONG_PLAN, mrr=1000, new_revenue=1000)
        add_plan(conn, "org-b", "week", "2025-11-03", "2025-11-09", "bravo-secret-plan", mrr=777777.77)
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
