"""The API's reads, each in `tenant_transaction(tenant_id)` under row-level security, rendered to
JSON or CSV bytes (what the cache stores). The SQL is in sql/; the metrics it returns are defined
in docs/metrics.md. A body with amounts names the tenant's currency (a `currency` field in JSON, a
`currency` column in CSV), read by the same statement as the data (core/currency.py's query as a
subquery), so that a cache miss costs one query; a KPI comes with its polarity (core/polarity.py).
Rates are fractions, 1 = 100 % (docs/api.md#units)."""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
from decimal import Decimal
from pathlib import Path

import orjson
import sqlalchemy as sa

from ..core.currency import CURRENCY_QUERY, DEFAULT_CURRENCY
from ..core.polarity import polarity
from ..core.resources import AnalyticsDatabase
from ..core.spreadsheet import safe_cell
from .params import Comparison, Range

SQL_DIR = Path(__file__).resolve().parent / "sql"

# How many deliveries of each scheduled report /v1/reports lists.
RECENT_DELIVERIES = 10


@functools.cache
def load(name: str) -> sa.TextClause:
    return sa.text((SQL_DIR / f"{name}.sql").read_text())


# Marks the data rows of a query read with its currency (a query without rows gives one row,
# with the currency and NULLs).
_HAS_ROW = "_has_row"


@functools.cache
def load_with_currency(name: str) -> sa.TextClause:
    """sql/<name>.sql with the tenant's currency (core/currency.py) in one statement: a column
    `currency` beside each of its rows, in their order (the one-row side drives a nested loop, the
    only join PostgreSQL has for `ON true`), and a single row of NULLs with it when there is none."""
    return sa.text(
        f"SELECT coalesce(({CURRENCY_QUERY}), :default_currency) AS currency, data.*\n"
        f"FROM (SELECT 1) AS one\n"
        f"LEFT JOIN LATERAL (SELECT true AS {_HAS_ROW}, q.* FROM (\n"
        f"{(SQL_DIR / f'{name}.sql').read_text().rstrip().rstrip(';')}\n"
        f") AS q) AS data ON true"
    )


def _default(value):
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def to_json(payload) -> bytes:
    return orjson.dumps(payload, default=_default, option=orjson.OPT_NAIVE_UTC)


def _csv_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode()  # starts with { or [: never a formula
    return str(safe_cell(value))


def to_csv(columns: list[str], rows: list[dict]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([_csv_cell(row[c]) for c in columns] for row in rows)
    return out.getvalue().encode()


def fetch(database: AnalyticsDatabase, tenant_id: str, name: str, **params) -> tuple[list[str], list[dict], str]:
    """Run sql/<name>.sql for one tenant; the column names, the rows as dicts and the tenant's
    currency (core/currency.py), read by one statement (load_with_currency)."""
    with database.tenant_transaction(tenant_id) as conn:
        result = conn.execute(load_with_currency(name),
                              {"tenant_id": tenant_id, "default_currency": DEFAULT_CURRENCY, **params})
        columns = list(result.keys())[2:]  # after currency and the row mark
        rows = result.all()
    currency = rows[0][0]
    return columns, [dict(zip(columns, row[2:])) for row in rows if row[1]], currency


def table(database: AnalyticsDatabase, tenant_id: str, name: str, fmt: str, meta: dict, **params) -> bytes:
    """A table endpoint's body: JSON `{...meta, "currency", "rows": [...]}` or CSV with a last
    column `currency` (the tables hold amounts)."""
    columns, rows, currency = fetch(database, tenant_id, name, **params)
    if fmt == "csv":
        return to_csv([*columns, "currency"], [{**row, "currency": currency} for row in rows])
    return to_json({"tenant_id": tenant_id, **meta, "currency": currency, "rows": rows})


def periodic_table(database: AnalyticsDatabase, tenant_id: str, aggregate: str, fmt: str, span: Range,
                   **filters) -> bytes:
    """The body of a periodic aggregate table's endpoint: sql/<aggregate>.sql, the table's rows of
    one period type overlapping the span (and matching `filters`, e.g. revenue_segments' `segment`),
    after the filters and the span themselves."""
    meta = {**filters, "period_type": span.period_type, "from": span.date_from, "to": span.date_to}
    return table(database, tenant_id, aggregate, fmt, meta, period_type=span.period_type,
                 date_from=span.date_from, date_to=span.date_to, **filters)


def mrr_bridge(database: AnalyticsDatabase, tenant_id: str, date_from: dt.date, date_to: dt.date) -> bytes:
    _, rows, currency = fetch(database, tenant_id, "mrr_bridge", date_from=date_from, date_to=date_to)
    return to_json({"tenant_id": tenant_id, "from": date_from, "to": date_to, "currency": currency, **rows[0]})


def comparison_params(comparison: Comparison) -> dict:
    current, previous = comparison.current, comparison.previous
    return dict(
        period_type=comparison.period_type, current_start=current.period_start, current_first=current.first,
        current_last=current.last, current_whole=current.whole, previous_start=previous.period_start,
        previous_first=previous.first, previous_last=previous.last, previous_whole=previous.whole,
    )


def _comparison_fields(comparison: Comparison) -> dict:
    """What a KPI body says of the spans it compares (docs/api.md#kpis)."""
    current, previous = comparison.current, comparison.previous
    return {
        "period_type": comparison.period_type,
        "day": comparison.day,
        "compare": comparison.compare,
        "period_start": current.period_start,
        "previous_period_start": previous.period_start,
        "current": {"from": current.first, "to": current.last, "whole_period": current.whole, "label": current.label},
        "previous": {"from": previous.first, "to": previous.last, "whole_period": previous.whole,
                     "label": previous.label},
        "label": comparison.label,
    }


def kpis(database: AnalyticsDatabase, tenant_id: str, comparison: Comparison) -> bytes:
    """Each KPI of the comparison's current span with its change against the previous span, as
    sql/kpis.sql computes it with the reports' rule (the SQL functions of migration 0020), and the
    KPI's polarity, whether its rise is good news (core/polarity.py, the reports' table)."""
    _, rows, currency = fetch(database, tenant_id, "kpis", **comparison_params(comparison))
    payload = {
        "tenant_id": tenant_id,
        **_comparison_fields(comparison),
        "currency": currency,
        "kpis": [{**row, "polarity": polarity(row["kpi"])} for row in rows],
    }
    return to_json(payload)


# The CSV of /v1/kpis/segments: one line per value and KPI, with the days compared.
SEGMENT_KPI_COLUMNS = ["segment", "value", "kpi", "unit", "current", "previous", "change_pct", "change_points",
                       "polarity", "period_type", "current_from", "current_to", "previous_from", "previous_to",
                       "currency"]


def segment_kpis(database: AnalyticsDatabase, tenant_id: str, segment: str, comparison: Comparison,
                 fmt: str) -> bytes:
    """Each value's KPIs of the comparison's current span with their change against the previous
    span (sql/kpis_segments.sql, docs/metrics.md#segment-kpis), as /v1/kpis has the tenant's: JSON
    with one KPI set per value, or CSV with one line per value and KPI."""
    _, rows, currency = fetch(database, tenant_id, "kpis_segments", segment=segment, **comparison_params(comparison))
    if fmt == "csv":
        current, previous = comparison.current, comparison.previous
        days = {"segment": segment, "period_type": comparison.period_type, "current_from": current.first,
                "current_to": current.last, "previous_from": previous.first, "previous_to": previous.last,
                "currency": currency}
        return to_csv(SEGMENT_KPI_COLUMNS, [{**row, **days, "polarity": polarity(row["kpi"])} for row in rows])
    values: dict[str, list[dict]] = {}
    for row in rows:  # in the SQL's order: values by current MRR, each value's KPIs in their order
        kpi = {key: row[key] for key in ("kpi", "unit", "current", "previous", "change_pct", "change_points")}
        values.setdefault(row["value"], []).append({**kpi, "polarity": polarity(row["kpi"])})
    return to_json({
        "tenant_id": tenant_id, "segment": segment, **_comparison_fields(comparison), "currency": currency,
        "values": [{"value": value, "kpis": kpis} for value, kpis in values.items()],
    })


def reports(database: AnalyticsDatabase, tenant_id: str) -> bytes:
    with database.tenant_transaction(tenant_id) as conn:
        rows = conn.execute(load("reports"), {"tenant_id": tenant_id, "deliveries": RECENT_DELIVERIES}).mappings()
        return to_json({"tenant_id": tenant_id, "reports": [dict(row) for row in rows]})
