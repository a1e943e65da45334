"""Constants and plain helpers of the report tests: the occurrence they deliver, a mail server on
loopback, rows inserted by hand, and reads of the delivery log. The fixtures are in conftest.py."""

from __future__ import annotations

import datetime as dt
import email
import json
import socket
from email import policy

import sqlalchemy as sa

from analytics_pipeline.core.resources import MailResource

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


def smtp(port: int) -> MailResource:
    return MailResource(host="127.0.0.1", port=port, security="none",
                        mail_from="Analytics <reports@example.com>", timeout_seconds=5)


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


SEGMENT_COLUMNS = ("mrr", "new_revenue", "reactivation_revenue", "expansion_revenue", "contraction_revenue",
                   "churned_revenue", "transfer_in_revenue", "transfer_out_revenue", "active_customers",
                   "new_customers", "reactivated_customers", "churned_customers", "transferred_in_customers",
                   "transferred_out_customers")


def add_plan(conn, tenant, period_type, start, end, plan, **values) -> None:
    """A revenue_segments row of the plan dimension; columns not given are 0, ARR is 12 × MRR."""
    row = {c: 0 for c in SEGMENT_COLUMNS} | values
    conn.execute(
        sa.text(
            f"INSERT INTO revenue_segments (id, tenant_id, period_type, period_start, period_end, dimension, value, "
            f"arr, {', '.join(SEGMENT_COLUMNS)}) VALUES (:id, :t, :pt, :s, :e, 'plan', :v, :arr, "
            f"{', '.join(':' + c for c in SEGMENT_COLUMNS)})"
        ),
        {"id": f"{tenant}:{period_type}:{start}:plan:{plan}", "t": tenant, "pt": period_type, "s": start, "e": end,
         "v": plan, "arr": 12 * row["mrr"], **row},
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
