"""The API's reads, each in `tenant_transaction(tenant_id)` under row-level security, rendered to
JSON or CSV bytes (what the cache stores). The SQL is in sql/; the metrics it returns are defined
in docs/metrics.md. A body with amounts names the tenant's currency (a `currency` field in JSON, a
`currency` column in CSV), read in the same transaction; a KPI comes with its polarity
(core/polarity.py). Rates are fractions, 1 = 100 % (docs/api.md#units)."""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
from decimal import Decimal
from pathlib import Path

import orjson
import sqlalchemy as sa

from ..core.polarity import polarity
from ..core.resources import AnalyticsDatabase
from ..core.spreadsheet import safe_cell
from ..core.currency import tenant_currency
from .params import Comparison, Range

SQL_DIR = Path(__file__).resolve().parent / "sql"

# How many deliveries of each scheduled report /v1/reports lists.
RECENT_DELIVERIES = 10


@functools.cache
def load(name: str) -> sa.TextClause:
    return sa.text((SQL_DIR / f"{name}.sql").read_text())


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
    currency (core/currency.py), read in one transaction."""
    with database.tenant_transaction(tenant_id) as conn:
        result = conn.execute(load(name), {"tenant_id": tenant_id, **params})
        columns = list(result.keys())
        rows = [dict(row) for row in result.mappings()]
        currency = tenant_currency(conn, tenant_id)
        return columns, rows, currency


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


def kpis(database: AnalyticsDatabase, tenant_id: str, comparison: Comparison) -> bytes:
    """Each KPI of the comparison's current span with its change against the previous span, as
    sql/kpis.sql computes it with the reports' rule (the SQL functions of migration 0020), and the
    KPI's polarity, whether its rise is good news (core/polarity.py, the reports' table)."""
    current, previous = comparison.current, comparison.previous
    _, rows, currency = fetch(
        database, tenant_id, "kpis", period_type=comparison.period_type,
        current_start=current.period_start, current_first=current.first, current_last=current.last,
        current_whole=current.whole, previous_start=previous.period_start, previous_first=previous.first,
        previous_last=previous.last, previous_whole=previous.whole,
    )
    payload = {
        "tenant_id": tenant_id,
        "period_type": comparison.period_type,
        "day": comparison.day,
        "compare": comparison.compare,
        "period_start": current.period_start,
        "previous_period_start": previous.period_start,
        "current": {"from": current.first, "to": current.last, "whole_period": current.whole, "label": current.label},
        "previous": {"from": previous.first, "to": previous.last, "whole_period": previous.whole,
                     "label": previous.label},
        "label": comparison.label,
        "currency": currency,
        "kpis": [{**row, "polarity": polarity(row["kpi"])} for row in rows],
    }
    return to_json(payload)


def reports(database: AnalyticsDatabase, tenant_id: str) -> bytes:
    _, rows, _ = fetch(database, tenant_id, "reports", deliveries=RECENT_DELIVERIES)
    return to_json({"tenant_id": tenant_id, "reports": rows})
