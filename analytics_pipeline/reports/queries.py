"""What a report reads: one tenant's aggregates for the report's period, inside a transaction that
row-level security restricts to that tenant (AnalyticsDatabase.tenant_transaction), so a report
cannot contain another tenant's numbers even if a query forgot its tenant filter.

The SQL lives beside this module in sql/; PostgreSQL does the sums and the changes in percent.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..core.currency import DEFAULT_CURRENCY
from ..core.months import add_months, month_start
from ..core.sql import sql_loader
from .schedule import Period, to_utc
from .validation import ReportConfig

load = sql_loader(__package__)
TREND_DAYS = 30  # the MRR trend and the daily report's revenue chart cover the last 30 days
TOP_PLANS = 10  # the revenue-by-plan table's plans shown one by one; the rest are summed (docs/reports.md)
PLAN_TABLE_REPORTS = ("comprehensive",)  # the report types with the revenue-by-plan table

SECTIONS = {
    "revenue_summary": ("revenue",),
    "user_analytics": ("users",),
    "tournament_performance": ("tournaments",),
    "comprehensive": ("revenue", "users", "tournaments"),
}


class BrokenReport(RuntimeError):
    """A query or a chart of the report failed: the delivery fails visibly (delivery log, retry,
    the run's failure alert) instead of sending a report with a part missing."""


@dataclass(frozen=True)
class Figure:
    """A key figure of the period against the period before."""

    metric: str
    unit: str  # amount, count, number, ratio (a fraction: 1 = 100 %)
    current: Decimal | int | None
    previous: Decimal | int | None
    change_pct: Decimal | None  # in percent; of a ratio, in percentage points


@dataclass(frozen=True)
class Table:
    """Rows as read, for the CSV attachment and the charts."""

    name: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row)) for row in self.rows]


@dataclass(frozen=True)
class PlanTable:
    """Revenue by plan (plan_table.sql): rows of kind `plan` (the TOP_PLANS largest by MRR),
    `other` (the rest, summed) and `total`. No rows: `pending` says whether revenue_segments has
    not been computed for the period yet, else no plan had MRR or a change in it."""

    rows: tuple[dict[str, Any], ...]
    pending: bool = False
    top: int = TOP_PLANS


@dataclass
class ReportData:
    organization: str
    period: Period
    sections: tuple[str, ...]
    figures: dict[str, list[Figure]] = field(default_factory=dict)
    tables: dict[str, Table] = field(default_factory=dict)
    formats: list[tuple[str, int]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # sections with no aggregate rows for the period
    # Of those, the sections whose aggregate has not run since the period ended: "not computed
    # yet"; the others had no activity in the period.
    pending: list[str] = field(default_factory=list)
    # The revenue section's KPI block (docs/metrics.md#kpis) and the period its current side is of.
    kpis: list[Figure] = field(default_factory=list)
    kpi_period: tuple[dt.date, dt.date] | None = None
    currency: str = DEFAULT_CURRENCY  # of every amount (docs/reports.md#currency)
    plans: PlanTable | None = None  # the comprehensive report's revenue by plan

    def is_empty(self) -> bool:
        """Nothing happened in the period: every figure of it is zero or absent, no tournament was
        created, and no signup cohort had an active user in a month overlapping it. A report
        with `skip_empty` sends nothing then."""
        if any(f.current for figures in self.figures.values() for f in figures):
            return False
        if self.formats:
            return False
        cohorts = self.tables.get("user_cohorts")
        for row in cohorts.records() if cohorts else ():
            month = add_months(row["cohort_month"], row["month_number"])
            if row["retained_users"] and month <= self.period.end and add_months(month, 1) > self.period.start:
                return False
        return True


def _run(conn: Connection, query: str, params: dict):
    try:
        return conn.execute(sa.text(load(query)), params)
    except sa.exc.DBAPIError as exc:
        reason = " ".join(str(exc.orig).split()) if exc.orig else type(exc).__name__
        raise BrokenReport(f"query {query} failed: {reason}") from exc


def _table(conn: Connection, name: str, query: str, params: dict) -> Table:
    result = _run(conn, query, params)
    return Table(name, tuple(result.keys()), tuple(tuple(r) for r in result))


def _figures(conn: Connection, query: str, params: dict) -> tuple[list[Figure], int]:
    rows = _run(conn, query, params).mappings().all()
    figures = [Figure(r["metric"], r["unit"], r["current"], r["previous"], r["change_pct"]) for r in rows]
    return figures, (rows[0].get("current_rows", 0) if rows else 0)


def _kpis(conn: Connection, params: dict) -> tuple[list[Figure], tuple[dt.date, dt.date] | None]:
    rows = _run(conn, "revenue_kpis", params).mappings().all()
    figures = [Figure(r["metric"], r["unit"], r["current"], r["previous"], r["change_pct"]) for r in rows]
    start = rows[0]["current_start"] if rows else None
    return figures, (start, rows[0]["current_end"]) if start else None


def _not_computed(conn: Connection, period: Period, aggregate: str) -> bool:
    """Whether `aggregate` has not run since the period's last (UTC) day ended (aggregate_freshness):
    its missing rows may come later (docs/operations.md#never-a-broken-report)."""
    ran = conn.execute(sa.text("SELECT materialized_at FROM aggregate_freshness WHERE aggregate = :a"),
                       {"a": aggregate}).scalar()
    return ran is None or ran < dt.datetime.combine(period.end + dt.timedelta(days=1), dt.time(0))


def _missing(conn: Connection, data: ReportData, section: str, aggregate: str) -> None:
    """A section without rows: no activity when its aggregate has run since the period ended, else
    not computed yet."""
    data.missing.append(section)
    if _not_computed(conn, data.period, aggregate):
        data.pending.append(section)


def last_period_start(end: dt.date, period_type: str) -> dt.date:
    """The first day of the last period (day, ISO week, month) of a side ending on `end`."""
    if period_type == "week":
        return end - dt.timedelta(days=end.isoweekday() - 1)
    if period_type == "month":
        return month_start(end)
    return end


def _plans(conn: Connection, period: Period, params: dict) -> PlanTable:
    rows = _run(conn, "plan_table", {
        **params, "top": TOP_PLANS, "last_start": last_period_start(period.end, period.period_type),
        "previous_last_start": last_period_start(period.previous_end, period.period_type),
    }).mappings().all()
    pending = not rows and _not_computed(conn, period, "revenue_segments")
    return PlanTable(tuple(dict(r) for r in rows), pending)


def local_midnight_utc(day: dt.date, report: ReportConfig) -> dt.datetime:
    return to_utc(dt.datetime.combine(day, dt.time(0), tzinfo=report.parameters.zone))


def read_report(conn: Connection, tenant_id: str, organization: str, report: ReportConfig, period: Period,
                currency: str = DEFAULT_CURRENCY) -> ReportData:
    """Everything the report shows. `conn` must be a tenant transaction of `tenant_id`.

    The aggregates are per UTC calendar date, so a period of local dates reads the aggregate rows
    of the same dates; the raw-event counts (signups, formats) use the exact local boundaries.
    """
    one_day = dt.timedelta(days=1)
    params = {
        "tenant_id": tenant_id,
        "period_type": period.period_type,
        "start": period.start,
        "end": period.end,
        "previous_start": period.previous_start,
        "trend_start": min(period.previous_start, period.end - dt.timedelta(days=TREND_DAYS - 1)),
        "start_at": local_midnight_utc(period.start, report),
        "end_at": local_midnight_utc(period.end + one_day, report),
        "previous_start_at": local_midnight_utc(period.previous_start, report),
    }
    data = ReportData(organization=organization, period=period, sections=SECTIONS[report.report_type],
                      currency=currency)
    if "revenue" in data.sections:
        data.figures["revenue"], found = _figures(conn, "revenue_summary", params)
        data.tables["revenue_aggregates"] = _table(conn, "revenue_aggregates", "revenue_rows", params)
        data.kpis, data.kpi_period = _kpis(conn, params)
        if not found:
            _missing(conn, data, "revenue", "revenue_aggregates")
        if report.report_type in PLAN_TABLE_REPORTS:
            data.plans = _plans(conn, period, params)
            data.tables["revenue_segments"] = _table(conn, "revenue_segments", "plan_rows", params)
    if "users" in data.sections:
        signups, _ = _figures(conn, "signups", params)
        first_cohort = add_months(period.end, -(report.parameters.cohorts - 1))
        cohorts = _table(conn, "user_cohorts", "cohort_rows", {**params, "first_cohort": first_cohort})
        data.figures["users"] = signups
        data.tables["user_cohorts"] = cohorts
        if not cohorts.rows:
            _missing(conn, data, "users", "user_cohorts")
    if "tournaments" in data.sections:
        data.figures["tournaments"], found = _figures(conn, "tournament_summary", params)
        data.tables["tournament_aggregates"] = _table(conn, "tournament_aggregates", "tournament_rows", params)
        data.formats = [(f, n) for f, n in _run(conn, "tournaments_by_format", params)]
        if not found:
            _missing(conn, data, "tournaments", "tournament_aggregates")
    return data


def organization_name(conn: Connection, tenant_id: str) -> str:
    """Read with the pipeline's own role: analytics_app has no grant on organizations, and giving
    it one would show every tenant all organizations' names."""
    name = conn.execute(sa.text("SELECT name FROM organizations WHERE id = :t"), {"t": tenant_id}).scalar()
    return name if name is not None else tenant_id
