"""How a report names and writes its figures, the same in the email, its plain text, the PDF and
a Slack message."""

from __future__ import annotations

from decimal import Decimal

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
# A KPI without a value has a denominator of 0 (or no row): not applicable, never 0.
NOT_APPLICABLE = "n/a"


def format_value(value, unit: str, missing: str = "–") -> str:
    if value is None:
        return missing
    if unit == "count":
        return f"{int(value):,}"
    if unit == "percent":
        return f"{Decimal(value):,.1f} %"
    if unit == "ratio":
        return f"{Decimal(value) * 100:,.1f} %"
    if unit == "number":
        return f"{Decimal(value):,.1f}"
    return f"{Decimal(value):,.2f}"


def format_change(change: Decimal | None, unit: str = "") -> str:
    """A change in percent; of a ratio, in percentage points."""
    if change is None:
        return "–"
    return f"{'+' if change > 0 else ''}{change:,.1f} {'pp' if unit == 'ratio' else '%'}"
