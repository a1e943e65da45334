"""How a report names and writes its figures, the same in the email, its plain text, the PDF and
a Slack message."""

from __future__ import annotations

from decimal import Decimal

from ..core.polarity import direction, tone

SECTION_TITLES = {"revenue": "Revenue", "users": "Users", "tournaments": "Tournaments"}
REPORT_TITLES = {
    "revenue_summary": "Revenue summary",
    "user_analytics": "User analytics",
    "tournament_performance": "Tournament performance",
    "comprehensive": "Comprehensive report",
}
METRIC_LABELS = {
    "mrr": "MRR (end of period)",
    "arr": "ARR (end of period)",
    "new_revenue": "New MRR",
    "expansion_revenue": "Expansion MRR",
    "reactivation_revenue": "Reactivation MRR",
    "contraction_revenue": "Contraction MRR",
    "churned_revenue": "Churned MRR",
    "total_revenue": "Revenue",
    "payment_count": "Payments",
    "payment_success_count": "Successful payments",
    "refund_count": "Refunds",
    "refund_amount": "Refunded amount",
    "active_customers": "Paying customers (end of period)",
    "new_customers": "New customers",
    "reactivated_customers": "Reactivated customers",
    "churned_customers": "Churned customers",
    "signups": "Signups",
    "tournament_count": "Tournaments",
    "completed_count": "Completed tournaments",
    "completion_rate": "Completion rate",
    "total_players": "Player registrations",
    "avg_players": "Players per tournament",
    "avg_duration_minutes": "Average duration (minutes)",
    "revenue": "Tournament revenue",
    # The KPI block (docs/metrics.md#kpis).
    "arpa": "ARPA (MRR per paying customer)",
    "logo_churn_rate": "Logo churn rate",
    "gross_mrr_churn_rate": "Gross MRR churn rate",
    "net_mrr_churn_rate": "Net MRR churn rate",
    "grr": "Gross revenue retention (GRR)",
    "nrr": "Net revenue retention (NRR)",
    "quick_ratio": "Quick ratio",
    "ttm_nrr": "NRR, trailing twelve months",
    "ttm_grr": "GRR, trailing twelve months",
}
# A section without aggregate rows for the period: either its aggregate has not run since the
# period ended, or the tenant had nothing of it (docs/metrics.md#which-rows-exist).
NOT_COMPUTED = "No {noun} figures have been computed for this period yet."
# "plans": the comprehensive report's revenue by plan (revenue_segments), which says it in the same words.
SECTION_NOUNS = {"revenue": "revenue", "users": "user", "tournaments": "tournament", "plans": "plan"}
NO_ACTIVITY = {
    "revenue": "No revenue activity in this period: no recurring revenue, no payments and no refunds.",
    "plans": "No plan activity in this period: no plan had recurring revenue or a change of it.",
    "users": "No user activity in this period: nobody signed up in the months the cohorts cover.",
    "tournaments": "No tournament activity in this period: no tournament was played.",
}


def empty_text(section: str, pending: bool) -> str:
    return NOT_COMPUTED.format(noun=SECTION_NOUNS[section]) if pending else NO_ACTIVITY[section]


# A KPI without a value has a denominator of 0 (or no row): not applicable, never 0.
NOT_APPLICABLE = "n/a"


def format_value(value, unit: str, missing: str = "–", currency: str | None = None) -> str:
    """A figure as the report writes it, locale-free: amounts to the cent with the tenant's
    currency code after them, counts whole, ratios (fractions) in percent."""
    if value is None:
        return missing
    if unit == "count":
        return f"{int(value):,}"
    if unit == "ratio":
        return f"{Decimal(value) * 100:,.1f} %"
    if unit == "number":
        return f"{Decimal(value):,.1f}"
    text = f"{Decimal(value):,.2f}"
    return f"{text} {currency}" if currency else text


def change_unit(unit: str) -> str:
    """What a change is measured in: percentage points for a ratio, percent for anything else
    (docs/metrics.md#change-against-the-previous-period)."""
    return "pp" if unit == "ratio" else "%"


def format_change(change: Decimal | None, unit: str = "") -> str:
    """A change in percent; of a ratio, in percentage points."""
    if change is None:
        return "–"
    return f"{'+' if change > 0 else ''}{change:,.1f} {change_unit(unit)}"


ARROWS = {"up": "▲", "down": "▼", "flat": ""}
TONE_WORDS = {"good": "better", "bad": "worse", "neutral": ""}
TONE_COLOURS = {"good": "#15803d", "bad": "#b91c1c", "neutral": "#64748b"}


def figure_view(metric: str, unit: str, current, previous, change, *, missing: str = "–",
                currency: str | None = None) -> dict:
    """One figure as every channel shows it: its label, values, change, the arrow of its direction
    and the tone (good, bad, neutral) its polarity gives the move (core/polarity.py). The move is
    current − previous, so a rise from 0 (no percent change) is judged too."""
    if current is not None and previous is not None:
        moved = Decimal(current) - Decimal(previous)
    else:
        moved = Decimal(change) if change is not None else None
    way, judged = direction(moved), tone(metric, moved)
    return {
        "label": METRIC_LABELS.get(metric, metric),
        "current": format_value(current, unit, missing, currency),
        "previous": format_value(previous, unit, missing, currency),
        "change": format_change(Decimal(change) if change is not None else None, unit),
        "direction": way,
        "arrow": ARROWS[way],
        "tone": judged,
        "tone_word": TONE_WORDS[judged],
        "colour": TONE_COLOURS[judged],
    }


# Revenue by plan (docs/reports.md#revenue-by-plan): under each plan's MRR, its period's flows.
PLAN_TITLE = "Revenue by plan"
PLAN_DETAILS = (
    ("new_revenue", "New", "amount"),
    ("reactivation_revenue", "Reactivation", "amount"),
    ("expansion_revenue", "Expansion", "amount"),
    ("contraction_revenue", "Contraction", "amount"),
    ("churned_revenue", "Churned", "amount"),
    ("transfer_in_revenue", "Transfers in", "amount"),
    ("transfer_out_revenue", "Transfers out", "amount"),
    ("active_customers", "Paying customers", "count"),
    ("churned_customers", "Churned customers", "count"),
)


def plan_label(kind: str, plan: str | None, plan_count: int) -> str:
    if kind == "total":
        return "All plans"
    if kind == "other":
        return f"Other {plan_count} plans"
    return plan if plan is not None else "(none)"


def plan_note(top: int, rows) -> str | None:
    """What the table leaves out, when it sums plans into one row."""
    other = [r for r in rows if r["kind"] == "other"]
    if not other:
        return None
    return f"The {top} plans of the largest MRR, then the other {other[0]['plan_count']} summed."


def plan_view(row, currency: str | None) -> dict:
    """One row of revenue by plan: its MRR against the previous period as a figure (the change,
    arrow and tone of MRR), and the period's movements, transfers and customers as details."""
    view = figure_view("mrr", "amount", row["mrr"], row["previous_mrr"], row["change_pct"], currency=currency)
    view["label"] = plan_label(row["kind"], row["plan"], row["plan_count"])
    view["kind"] = row["kind"]
    view["details"] = [(label, format_value(row[column], unit, currency=currency))
                       for column, label, unit in PLAN_DETAILS]
    return view
