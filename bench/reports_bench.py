"""Scheduled reports: sensor tick time, and time to render and send comprehensive reports.

    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres .venv/bin/python -m bench.reports_bench

Uses a scratch database (bench/scratch.py), filled with SQL:

1. 10,000 active reports of which 1,000 are due: the time of one `scheduled_reports_sensor`
   evaluation (median of 5), which must stay well under Dagster's 60 s tick limit.
2. 100 due comprehensive weekly reports over 100 tenants, each with a year of daily revenue and
   tournament rows, weekly rows, a 12-month cohort triangle and 2,000 raw events: the time to
   claim, read, render (4 charts, 3 CSVs) and send all of them, one message per recipient (3), to
   an aiosmtpd server on loopback.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import socket
import statistics
import time

import dagster as dg
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from analytics_pipeline.core.resources import AnalyticsDatabase, MailResource
from analytics_pipeline.reports.delivery import deliver_scheduled
from analytics_pipeline.reports.sensors import scheduled_reports_sensor

from .scratch import scratch_database


class Sink:
    def __init__(self):
        self.count = 0
        self.bytes = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        self.bytes += len(envelope.content)
        return "250 OK"


def fill_sensor_case(conn) -> None:
    conn.execute(sa.text("INSERT INTO organizations (id, name) SELECT 'org-' || g, 'Org ' || g FROM generate_series(1, 100) g"))
    conn.execute(sa.text(
        """
        INSERT INTO scheduled_reports (id, tenant_id, name, report_type, frequency, recipients, parameters, next_run_at)
        SELECT 'r' || g, 'org-' || (g % 100 + 1), 'Report ' || g, 'comprehensive', 'weekly',
               ARRAY['a' || g || '@example.com', 'b' || g || '@example.com'], '{"timezone": "Europe/Berlin"}',
               CASE WHEN g <= 1000 THEN (now() AT TIME ZONE 'UTC') - (g || ' seconds')::interval
                    ELSE (now() AT TIME ZONE 'UTC') + ((g % 7 + 1) || ' days')::interval END
        FROM generate_series(1, 10000) g
        """
    ))
    conn.execute(sa.text("ANALYZE scheduled_reports"))


def fill_delivery_case(conn, now: dt.datetime) -> None:
    conn.execute(sa.text("INSERT INTO organizations (id, name) SELECT 't' || g, 'Tenant ' || g FROM generate_series(1, 100) g"))
    conn.execute(sa.text(
        """
        INSERT INTO revenue_aggregates (id, tenant_id, period_type, period_start, period_end, mrr, arr, new_revenue,
            churned_revenue, expansion_revenue, total_revenue, payment_count, payment_success_count, refund_count, refund_amount)
        SELECT t || p || d, t, p, d, d, 10000 + i * 10, 120000 + i * 120, 100, 20, 30, 900 + i, 30, 29, 1, 15
        FROM (SELECT 't' || g AS t FROM generate_series(1, 100) g) tenants
        CROSS JOIN LATERAL (SELECT 'day' AS p, d::date AS d, row_number() OVER () AS i
                            FROM generate_series(CAST(:now AS date) - 365, CAST(:now AS date), interval '1 day') d
                            UNION ALL
                            SELECT 'week', d::date, row_number() OVER ()
                            FROM generate_series(date_trunc('week', CAST(:now AS date)) - interval '52 weeks',
                                                 CAST(:now AS date), interval '1 week') d) periods
        """
    ), {"now": now})
    conn.execute(sa.text(
        """
        INSERT INTO tournament_aggregates (id, tenant_id, period_type, period_start, period_end, tournament_count,
            completed_count, completion_rate, total_players, avg_players, avg_duration_minutes, most_popular_format, revenue)
        SELECT t || d, t, 'week', d, d + 6, 20, 18, 90, 300, 15, 85, 'swiss', 400
        FROM (SELECT 't' || g AS t FROM generate_series(1, 100) g) tenants
        CROSS JOIN generate_series(date_trunc('week', CAST(:now AS date)) - interval '52 weeks', CAST(:now AS date),
                                   interval '1 week') AS w(d0)
        CROSS JOIN LATERAL (SELECT w.d0::date AS d) x
        """
    ), {"now": now})
    conn.execute(sa.text(
        """
        INSERT INTO user_cohorts (id, tenant_id, cohort_month, month_number, cohort_size, retained_users,
            retention_rate, revenue, ltv)
        SELECT t || c || m, t, c, m, 100, 100 - m * 6, 100 - m * 6, 500, 5 * (m + 1)
        FROM (SELECT 't' || g AS t FROM generate_series(1, 100) g) tenants
        CROSS JOIN (SELECT (date_trunc('month', CAST(:now AS date)) - k * interval '1 month')::date AS c, k
                    FROM generate_series(0, 11) k) cohorts
        CROSS JOIN LATERAL generate_series(0, k) AS m
        """
    ), {"now": now})
    conn.execute(sa.text(
        """
        INSERT INTO analytics_events (id, tenant_id, event_type, event_data, timestamp)
        SELECT 'e' || t || '-' || g, t, 'tournament_created',
               jsonb_build_object('tournament_id', 'x' || g, 'format', (ARRAY['swiss', 'single_elimination', 'round_robin'])[g % 3 + 1]),
               CAST(:now AS timestamp) - (g % 14 || ' days')::interval
        FROM (SELECT 't' || g AS t FROM generate_series(1, 100) g) tenants CROSS JOIN generate_series(1, 2000) g
        """
    ), {"now": now})
    conn.execute(sa.text(
        """
        INSERT INTO scheduled_reports (id, tenant_id, name, report_type, frequency, recipients, next_run_at)
        SELECT 'd' || g, 't' || g, 'Weekly KPIs', 'comprehensive', 'weekly',
               ARRAY['ann@example.com', 'bob@example.com', 'cy@example.com'], CAST(:now AS timestamp) - interval '1 minute'
        FROM generate_series(1, 100) g
        """
    ), {"now": now})
    conn.execute(sa.text("ANALYZE"))


SENSOR_TICKS = 5
REPORTS = 100
# The specification schedules report delivery every 15 minutes; 1,000 due reports delivered one
# after the other fit in that interval at under 900 ms each.
PER_REPORT_TARGET_MS = 900
RECIPIENTS = 3  # per report, as fill_delivery_case writes them


def measure_sensor(engine, database: AnalyticsDatabase) -> dict:
    with engine.begin() as conn:
        fill_sensor_case(conn)
    ticks = []
    for _ in range(SENSOR_TICKS):
        started = time.perf_counter()
        requests = scheduled_reports_sensor(dg.build_sensor_context(resources={"database": database}))
        ticks.append(time.perf_counter() - started)
        assert len(requests) == 1000, len(requests)
    with engine.connect() as conn:
        plan = conn.execute(sa.text(
            "EXPLAIN SELECT id FROM scheduled_reports WHERE is_active AND next_run_at <= now() AT TIME ZONE 'UTC'"
        )).scalars().all()
    return {"ticks": ticks, "plan": " / ".join(line.strip() for line in plan[:2])}


def measure_delivery(engine, database: AnalyticsDatabase) -> dict:
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM scheduled_reports"))
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with engine.begin() as conn:
        fill_delivery_case(conn, now)
    # Report emails link the Dashboard API (unsubscribe); through an SMTP server its address is required.
    os.environ.setdefault("DASHBOARD_URL", "https://analytics.example.com")
    sink = Sink()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        mail = MailResource(host="127.0.0.1", port=port, security="none", mail_from="Reports <reports@example.com>")
        started = time.perf_counter()
        statuses = [deliver_scheduled(database, mail, f"d{g}").status for g in range(1, REPORTS + 1)]
        elapsed = time.perf_counter() - started
    finally:
        controller.stop()
    # One message per recipient (each with its own unsubscribe link): three per report.
    assert statuses == ["sent"] * REPORTS and sink.count == REPORTS * RECIPIENTS, (statuses, sink.count)
    return {"seconds": elapsed, "kib_per_message": sink.bytes / sink.count / 1024}


def run(ctx=None) -> list[dict]:
    with scratch_database("reports") as engine:
        database = AnalyticsDatabase(url=engine.url.render_as_string(hide_password=False))
        sensor = measure_sensor(engine, database)
        delivery = measure_delivery(engine, database)
    ticks = sensor["ticks"]
    return [
        {
            "name": "scheduled_reports_sensor tick, 10,000 active reports of which 1,000 due (median of 5)",
            "figure": round(statistics.median(ticks) * 1000),
            "unit": "ms",
            "target": "< 1000 ms",
            "baseline": f"min {min(ticks) * 1000:.0f} ms, max {max(ticks) * 1000:.0f} ms",
            "notes": f"1,000 run requests per tick; Dagster's tick limit is 60 s; plan: {sensor['plan']}",
        },
        {
            "name": f"render (4 charts, 3 CSVs) and send {REPORTS} comprehensive reports to aiosmtpd on loopback, per report",
            "figure": round(delivery["seconds"] / REPORTS * 1000),
            "unit": "ms",
            "target": f"< {PER_REPORT_TARGET_MS} ms",
            "baseline": f"{delivery['seconds']:.1f} s for all {REPORTS}",
            "notes": f"{RECIPIENTS} recipients, one message each, {delivery['kib_per_message']:.0f} KiB per message; "
                     "target: 1,000 due reports sent one "
                     "after the other within the specification's 15-minute schedule interval",
        },
    ]


def main() -> None:
    for row in run():
        print(row)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")


if __name__ == "__main__":
    main()
