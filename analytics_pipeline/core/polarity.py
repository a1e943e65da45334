"""Whether a metric's rise is good news, bad news or neither: one table for every reader that
colours a change (the report email, its plain text and PDF, the webhook and Slack message; the
Dashboard API can serve it to the dashboard). Definitions of the metrics: docs/metrics.md.

A change is judged by its sign and the metric's polarity: churn or refunds going up is bad, MRR
going up is good, a duration going up is neither. A metric missing from the table is neutral, so
a new figure is shown grey until it is placed here, never in a colour that could mislead.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

Polarity = Literal["higher_is_better", "lower_is_better", "neutral"]
Tone = Literal["good", "bad", "neutral"]

HIGHER: Polarity = "higher_is_better"
LOWER: Polarity = "lower_is_better"
NEUTRAL: Polarity = "neutral"

POLARITY: dict[str, Polarity] = {
    # revenue_aggregates (docs/metrics.md#revenue_aggregates)
    "mrr": HIGHER,
    "arr": HIGHER,
    "new_revenue": HIGHER,
    "expansion_revenue": HIGHER,
    "reactivation_revenue": HIGHER,
    "contraction_revenue": LOWER,
    "churned_revenue": LOWER,
    "net_new_mrr": HIGHER,
    "total_revenue": HIGHER,
    "payment_count": HIGHER,
    "payment_success_count": HIGHER,
    "refund_count": LOWER,
    "refund_amount": LOWER,
    "active_customers": HIGHER,
    "new_customers": HIGHER,
    "reactivated_customers": HIGHER,
    "churned_customers": LOWER,
    # The KPIs (docs/metrics.md#kpis)
    "arpa": HIGHER,
    "logo_churn_rate": LOWER,
    "gross_mrr_churn_rate": LOWER,
    "net_mrr_churn_rate": LOWER,
    "grr": HIGHER,
    "nrr": HIGHER,
    "quick_ratio": HIGHER,
    "ttm_nrr": HIGHER,
    "ttm_grr": HIGHER,
    # Users (docs/metrics.md#user_cohorts)
    "signups": HIGHER,
    "retention_rate": HIGHER,
    "ltv": HIGHER,
    # tournament_aggregates (docs/metrics.md#tournament_aggregates)
    "tournament_count": HIGHER,
    "completed_count": HIGHER,
    "completion_rate": HIGHER,
    "total_players": HIGHER,
    "avg_players": HIGHER,
    "avg_duration_minutes": NEUTRAL,  # longer tournaments are neither better nor worse
    "revenue": HIGHER,
}


def polarity(metric: str) -> Polarity:
    return POLARITY.get(metric, NEUTRAL)


def tone(metric: str, change: Decimal | float | int | None) -> Tone:
    """good, bad or neutral: the sign of `change` (current − previous, in any unit) read with the
    metric's polarity. No change, no known change, or a neutral metric: neutral."""
    if change is None or change == 0:
        return "neutral"
    side = polarity(metric)
    if side == NEUTRAL:
        return "neutral"
    return "good" if (change > 0) == (side == HIGHER) else "bad"


def direction(change: Decimal | float | int | None) -> Literal["up", "down", "flat"]:
    """Which way the figure moved, for the arrow (▲ ▼), whatever its polarity."""
    if change is None or change == 0:
        return "flat"
    return "up" if change > 0 else "down"
