"""The JSON bodies of the /v1 endpoints as JSON Schemas, for the OpenAPI document: the endpoints
return bytes rendered in queries.py (cached as they are), so no response model describes them.
The API's fuzz test (analytics_pipeline_tests/api/test_api_fuzz.py) checks every answer against
these. Columns: docs/api.md#endpoints; the metrics: docs/metrics.md."""

from __future__ import annotations

from typing import get_args

from ..aggregation.periods import PERIOD_TYPES
from ..core.polarity import Polarity
from ..core.schema import SEGMENT_DIMENSIONS
from .params import COHORT_SEGMENTS as COHORT_SEGMENT_CHOICES
from .params import COMPARISONS

NUMBER = {"type": "number"}
NUMBER_OR_NULL = {"type": ["number", "null"]}
DAY = {"type": "string", "format": "date"}
TIME_OR_NULL = {"type": ["string", "null"], "format": "date-time"}
# The tenant's currency, an ISO 4217 code (docs/api.md#currency); rates are fractions (1 = 100 %).
CURRENCY = {"type": "string", "pattern": "^[A-Z]{3}$"}
RATE_OR_NULL = {"type": ["number", "null"], "minimum": 0, "maximum": 1}


def _object(properties: dict, **extra) -> dict:
    """An object with exactly these properties, each required."""
    return {"type": "object", "required": list(properties), "properties": properties, **extra}


# Added to every aggregate answer as it leaves (freshness.py).
FRESHNESS = {"data_updated_at": TIME_OR_NULL, "data_stale_after": TIME_OR_NULL}


def periodic_table(columns: tuple[str, ...], segmented: bool = False) -> dict:
    """/v1/revenue, /v1/revenue/segments (`segmented`: the dimension its rows split by) and
    /v1/tournaments: the span, and the table's rows with at least `columns`."""
    row = {"type": "object", "required": list(columns), "properties": {"tenant_id": {"type": "string"}}}
    if segmented:
        row["properties"].update(dimension={"enum": list(SEGMENT_DIMENSIONS)}, value={"type": "string"})
    segment = {"segment": {"enum": list(SEGMENT_DIMENSIONS)}} if segmented else {}
    return _object({"tenant_id": {"type": "string"}, **segment, "period_type": {"enum": list(PERIOD_TYPES)},
                    "from": DAY, "to": DAY, "currency": CURRENCY, "rows": {"type": "array", "items": row},
                    **FRESHNESS})


REVENUE_COLUMNS = ("tenant_id", "period_type", "period_start", "period_end", "mrr", "arr", "new_revenue",
                   "churned_revenue", "total_revenue", "active_customers")
SEGMENT_COLUMNS = (*REVENUE_COLUMNS[:4], "dimension", "value", "mrr", "arr", "new_revenue", "reactivation_revenue",
                   "expansion_revenue", "contraction_revenue", "churned_revenue", "transfer_in_revenue",
                   "transfer_out_revenue", "active_customers", "new_customers", "reactivated_customers",
                   "churned_customers", "transferred_in_customers", "transferred_out_customers")
TOURNAMENT_COLUMNS = ("tenant_id", "period_type", "period_start", "period_end", "tournament_count",
                      "completion_rate", "most_popular_format", "revenue")

BRIDGE = _object({
    "tenant_id": {"type": "string"}, "from": DAY, "to": DAY, "currency": CURRENCY,
    **{name: NUMBER for name in ("opening_mrr", "new_revenue", "reactivation_revenue", "expansion_revenue",
                                 "contraction_revenue", "churned_revenue", "closing_mrr")},
    "identity_holds": {"type": "boolean"}, **FRESHNESS,
})

_SPAN = _object({"from": DAY, "to": DAY, "whole_period": {"type": "boolean"}, "label": {"type": "string"}})
# The spans a KPI body compares (docs/api.md#kpis).
_COMPARISON = {
    "period_type": {"enum": list(PERIOD_TYPES)}, "day": DAY, "compare": {"enum": list(COMPARISONS)},
    "period_start": DAY, "previous_period_start": DAY, "current": _SPAN, "previous": _SPAN,
    "label": {"type": "string"},
}
_KPI = _object({
    "kpi": {"type": "string"}, "unit": {"enum": ["amount", "count", "ratio", "number"]},
    "current": NUMBER_OR_NULL, "previous": NUMBER_OR_NULL, "change_pct": NUMBER_OR_NULL,
    "change_points": NUMBER_OR_NULL,
    # Whether the KPI's rise is good news (analytics_pipeline/core/polarity.py).
    "polarity": {"enum": list(get_args(Polarity))},
})
KPIS = _object({
    "tenant_id": {"type": "string"}, **_COMPARISON, "currency": CURRENCY,
    "kpis": {"type": "array", "minItems": 1, "items": _KPI},
    **FRESHNESS,
})
# /v1/kpis/segments: one KPI set per value of the dimension (docs/metrics.md#segment-kpis).
SEGMENT_KPI_NAMES = ("mrr", "arr", "new_revenue", "expansion_revenue", "reactivation_revenue",
                     "contraction_revenue", "churned_revenue", "transfer_in_revenue", "transfer_out_revenue",
                     "net_new_mrr", "active_customers", "new_customers", "reactivated_customers",
                     "churned_customers", "transferred_in_customers", "transferred_out_customers", "arpa",
                     "logo_churn_rate", "gross_mrr_churn_rate", "net_mrr_churn_rate", "grr", "nrr", "quick_ratio")
SEGMENT_KPIS = _object({
    "tenant_id": {"type": "string"}, "segment": {"enum": list(SEGMENT_DIMENSIONS)}, **_COMPARISON,
    "currency": CURRENCY,
    "values": {"type": "array", "items": _object({
        "value": {"type": "string"},
        "kpis": {"type": "array", "minItems": len(SEGMENT_KPI_NAMES), "maxItems": len(SEGMENT_KPI_NAMES),
                 "items": {**_KPI, "properties": {**_KPI["properties"], "kpi": {"enum": list(SEGMENT_KPI_NAMES)}}}},
    })},
    **FRESHNESS,
})

COHORTS = _object({
    "tenant_id": {"type": "string"}, "from": DAY, "to": DAY, "currency": CURRENCY,
    "rows": {"type": "array", "items": _object({
        "cohort_month": DAY, "month_number": {"type": "integer", "minimum": 0},
        "cohort_size": {"type": "integer"}, "retained_users": {"type": "integer"},
        "retention_rate": RATE_OR_NULL, "revenue": NUMBER_OR_NULL, "ltv": NUMBER_OR_NULL,
    })},
    **FRESHNESS,
})

COHORT_SEGMENTS = _object({
    "tenant_id": {"type": "string"}, "segment": {"enum": list(COHORT_SEGMENT_CHOICES)}, "from": DAY, "to": DAY,
    "currency": CURRENCY,
    "rows": {"type": "array", "items": _object({
        "cohort_month": DAY, "value": {"type": "string"}, "month_number": {"type": "integer", "minimum": 0},
        "cohort_size": {"type": "integer"}, "retained_users": {"type": "integer"},
        "retention_rate": RATE_OR_NULL, "revenue": NUMBER_OR_NULL, "ltv": NUMBER_OR_NULL,
    })},
    **FRESHNESS,
})

REPORTS = _object({
    "tenant_id": {"type": "string"},
    "reports": {"type": "array", "items": {
        "type": "object", "required": ["id", "name", "report_type", "frequency", "is_active", "deliveries"],
        "properties": {"deliveries": {"type": "array", "maxItems": 10}},
    }},
})


def answers(schema: dict, csv: bool = False) -> dict:
    """The `responses` of an endpoint answering `schema` as JSON (and a CSV file with `csv`)."""
    content = {"application/json": {"schema": schema}}
    if csv:
        content["text/csv"] = {"schema": {"type": "string"}}
    return {200: {"content": content}}

HEALTH = _object({"status": {"const": "ok"}})
READINESS = {
    "type": "object", "required": ["status"],
    "properties": {"status": {"enum": ["ready", "degraded", "not ready"]},
                   "failing": {"type": "array", "minItems": 1, "items": {"enum": ["database", "redis"]}}},
}
