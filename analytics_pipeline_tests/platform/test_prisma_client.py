"""The client Prisma generates from platform/prisma/schema.prisma: its types compile under
`tsc --strict` with platform/prisma/check/usage.ts (events with JSON payloads, scheduled reports
with recipients, money as Decimal, and the column types pinned there), and one round trip through
it and @prisma/adapter-pg, as one tenant under row-level security, sees and writes only that
tenant's rows.
"""

from __future__ import annotations

import datetime as dt
import json
import re

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from analytics_pipeline_tests.helpers import add_tenant
from analytics_pipeline_tests.platform.conftest import PRISMA_DIR, run_node


def test_the_generated_client_compiles_under_strict_with_the_usage_file(compiled_client):
    tsconfig = json.loads((PRISMA_DIR / "tsconfig.json").read_text())
    assert tsconfig["compilerOptions"]["strict"] is True
    assert tsconfig["compilerOptions"]["noEmitOnError"] is True  # so the JavaScript exists only if it compiled
    for module in ("check/usage.js", "check/roundtrip.js", "generated/client/client.js"):
        assert (compiled_client / "build" / module).exists(), module


# Seeded rows of both tenants: revenue (the widest money the column holds, beyond a float's
# precision), cohorts, tournaments, events and reports.
SEED = [
    ("INSERT INTO revenue_aggregates (id, tenant_id, period_start, period_end, period_type, mrr, arr, "
     "new_revenue, churned_revenue, expansion_revenue, total_revenue, payment_count, payment_success_count, "
     "refund_count, refund_amount) VALUES "
     "('org-a:month:2026-02-01', 'org-a', '2026-02-01', '2026-02-28', 'month', 9999999999999999.99, 0, 0, 0, 0, 0, 0, 0, 0, 0), "
     "('org-a:month:2026-03-01', 'org-a', '2026-03-01', '2026-03-31', 'month', 0.01, 0.12, 0, 0, 0, 0, 0, 0, 0, 0), "
     "('org-b:month:2026-03-01', 'org-b', '2026-03-01', '2026-03-31', 'month', 500, 6000, 0, 0, 0, 0, 0, 0, 0, 0)"),
    ("INSERT INTO user_cohorts (id, tenant_id, cohort_month, cohort_size, month_number, retained_users, "
     "retention_rate, revenue, ltv) VALUES "
     "('org-a-c1', 'org-a', '2026-01-01', 3, 1, 1, 33.33, 0, 0), ('org-b-c1', 'org-b', '2026-01-01', 1, 0, 1, 100, 0, 0)"),
    ("INSERT INTO tournament_aggregates (id, tenant_id, period_start, period_end, period_type, tournament_count, "
     "completed_count, completion_rate, total_players, avg_players, revenue) VALUES "
     "('org-a-t1', 'org-a', '2026-03-01', '2026-03-01', 'day', 1, 1, 100, 2, 2, 0), "
     "('org-b-t1', 'org-b', '2026-03-01', '2026-03-01', 'day', 1, 1, 100, 2, 2, 0)"),
    ("INSERT INTO analytics_events (id, tenant_id, event_type, event_data, timestamp) VALUES "
     "('org-a-e1', 'org-a', 'page_view', '{}', '2026-03-01'), ('org-b-e1', 'org-b', 'page_view', '{}', '2026-03-01')"),
    ("INSERT INTO scheduled_reports (id, tenant_id, name, report_type, frequency, recipients, next_run_at, is_active) "
     "VALUES ('org-a-s1', 'org-a', 'Daily', 'comprehensive', 'daily', ARRAY['a@example.com'], '2026-01-01', true), "
     "('org-a-s2', 'org-a', 'Paused', 'comprehensive', 'daily', ARRAY['a@example.com'], '2026-01-01', false), "
     "('org-b-s1', 'org-b', 'Daily', 'comprehensive', 'daily', ARRAY['b@example.com'], '2026-01-01', true)"),
]


def test_a_round_trip_under_row_level_security_sees_only_its_tenant(compiled_client, db_url, engine):
    with engine.begin() as conn:
        add_tenant(conn, "org-a", ["org-a-user"])
        add_tenant(conn, "org-b", ["org-b-user"])
        for statement in SEED:
            conn.execute(sa.text(statement))

    url = make_url(db_url).set(drivername="postgresql").render_as_string(hide_password=False)
    done = run_node(
        [compiled_client / "build" / "check" / "roundtrip.js"],
        cwd=compiled_client,
        env={"DATABASE_URL": url, "TENANT": "org-a", "OTHER_TENANT": "org-b"},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)

    # Only org-a's rows, in the order asked for, with the money exact.
    assert seen["tenantsSeen"] == ["org-a"]
    assert seen["events"] == ["org-a-e1", "org-a-prisma-event"]
    assert seen["reports"] == ["org-a-prisma-report", "org-a-s1", "org-a-s2"]
    assert sorted(seen["dueReports"]) == ["org-a-prisma-report", "org-a-s1"]
    assert seen["revenue"] == [
        {"id": "org-a:month:2026-03-01", "periodStart": "2026-03-01", "mrr": "0.01", "arr": "0.12"},
        {"id": "org-a:month:2026-02-01", "periodStart": "2026-02-01", "mrr": "9999999999999999.99", "arr": "0"},
    ]
    assert seen["marchMrr"] == "0.01"
    assert seen["totalMrr"] == "10000000000000000"  # 9999999999999999.99 + 0.01, which no float holds
    assert seen["cohorts"] == [{"id": "org-a-c1", "retentionRate": "33.33"}]
    assert seen["tournaments"] == ["org-a-t1"]
    assert seen["report"] == {
        "id": "org-a-prisma-report",
        "recipients": ["cfo@example.com", "ops@example.com"],
        "isActive": True,
    }

    # Another tenant's rows can be neither written nor changed.
    assert seen["otherTenantInsert"].startswith("refused"), seen["otherTenantInsert"]
    assert "row-level security" in seen["otherTenantInsert"]
    assert seen["otherTenantRowsUpdated"] == 0

    # What the client wrote, as the pipeline's own role reads it.
    with engine.connect() as conn:
        event = conn.execute(
            sa.text(
                "SELECT tenant_id, event_type, event_data, user_id, session_id, timestamp, created_at, ingest_xid "
                "FROM analytics_events WHERE id = 'org-a-prisma-event'"
            )
        ).one()
        report = conn.execute(
            sa.text(
                "SELECT tenant_id, report_type, frequency, recipients, parameters, next_run_at, is_active "
                "FROM scheduled_reports WHERE id = 'org-a-prisma-report'"
            )
        ).one()
        org_b_mrr = conn.execute(sa.text("SELECT mrr FROM revenue_aggregates WHERE tenant_id = 'org-b'")).scalar()
        forged = conn.execute(sa.text("SELECT count(*) FROM analytics_events WHERE id = 'org-b-forged'")).scalar()
    assert event.tenant_id == "org-a" and event.event_type == "payment_completed"
    assert event.event_data == {
        "amount": "19.99",
        "currency": "EUR",
        "plan": {"id": "pro", "seats": 3},
        "tags": ["prisma", "ünïcode"],
    }
    assert (event.user_id, event.session_id) == ("org-a-user", None)
    assert event.timestamp == dt.datetime(2026, 3, 4, 5, 6, 7)  # the Date's UTC time, as the columns hold time
    assert event.ingest_xid is not None  # the database's, on insert
    # created_at is the database's UTC time, which the client reads back as that instant
    read_back = dt.datetime.fromisoformat(seen["event"]["createdAt"].replace("Z", "+00:00")).replace(tzinfo=None)
    assert abs(read_back - event.created_at) < dt.timedelta(milliseconds=1)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", seen["event"]["createdAt"])
    assert seen["event"]["eventData"] == event.event_data
    assert tuple(report) == (
        "org-a",
        "revenue_summary",
        "weekly",
        ["cfo@example.com", "ops@example.com"],
        {"period_type": "month"},
        dt.datetime(2026, 3, 9, 8, 0),
        True,
    )
    assert str(org_b_mrr) == "500.00"
    assert forged == 0
