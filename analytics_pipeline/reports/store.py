"""Adding a scheduled report: the one INSERT that the CLI's `reports add` and the demo use."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .validation import ReportConfig


def insert_report(conn: Connection, tenant_id: str, report: ReportConfig, next_run_at: dt.datetime,
                  *, active: bool) -> str:
    """Store a validated report of `tenant_id`, first due at `next_run_at`; returns its new id."""
    report_id = f"rpt_{uuid.uuid4().hex[:16]}"
    conn.execute(
        sa.text(
            "INSERT INTO scheduled_reports (id, tenant_id, name, report_type, frequency, recipients, "
            "parameters, next_run_at, is_active) VALUES (:id, :tenant, :name, :type, :frequency, "
            ":recipients, CAST(:parameters AS jsonb), :next_run_at, :active)"
        ),
        {"id": report_id, "tenant": tenant_id, "name": report.name, "type": report.report_type,
         "frequency": report.frequency, "recipients": list(report.recipients),
         "parameters": json.dumps(report.parameters.as_json()), "next_run_at": next_run_at, "active": active},
    )
    return report_id
