"""One-line descriptions of the columns, as COMMENTs: of the aggregates, the view revenue_kpis,
the derived state the assets keep, and analytics_events. analytics_pipeline/core/schema.py keeps them
and the assets' column descriptions in the UI come from there; this revision puts the same text
on the database, so that psql and any client reading the catalog show it too.

Revision ID: 0016_column_comments
Revises: 0015_customer_counts_and_kpis
"""

from alembic import op

revision = "0016_column_comments"
down_revision = "0015_customer_counts_and_kpis"
branch_labels = None
depends_on = None

# As analytics_pipeline/core/schema.py has them at this revision.
COMMENTS = {
    "customer_mrr_days": {
        "tenant_id": "The organization of the customer (docs/metrics.md#mrr-state)",
        "user_id": "The customer (docs/metrics.md#mrr-state)",
        "day": "A day (UTC) on which the customer's MRR changed (docs/metrics.md#mrr-state)",
        "mrr": "The customer's MRR at the end of the day (docs/metrics.md#mrr)",
        "new_revenue": "The customer's new MRR of the day (docs/metrics.md#mrr-movements)",
        "reactivation_revenue": "The customer's reactivation MRR of the day (docs/metrics.md#mrr-movements)",
        "expansion_revenue": "The customer's expansion MRR of the day (docs/metrics.md#mrr-movements)",
        "contraction_revenue": "The customer's contraction MRR of the day (docs/metrics.md#mrr-movements)",
        "churned_revenue": "The customer's churned MRR of the day (docs/metrics.md#mrr-movements)",
    },
    "payment_events": {
        "event_id": "id of the payment event in analytics_events (docs/metrics.md#payment-history)",
        "tenant_id": "The organization the event belongs to (docs/metrics.md#payment-history)",
        "event_type": "payment_completed, payment_failed or payment_refunded (docs/metrics.md#payment-history)",
        "occurred_at": "The event's timestamp, UTC (docs/metrics.md#payment-history)",
        "amount": "The event's amount in currency units, rounded to cents (docs/metrics.md#payment-history)",
    },
    "revenue_aggregates": {
        "id": "Row key: tenant_id:period_type:period_start (docs/metrics.md#revenue_aggregates)",
        "tenant_id": "The organization the row belongs to; row-level security filters on it (docs/metrics.md#revenue_aggregates)",
        "period_start": "First day of the period (docs/metrics.md#periods)",
        "period_end": "Last day of the period, inclusive, also while it is running (docs/metrics.md#periods)",
        "period_type": "day, week (ISO), month, quarter or year (docs/metrics.md#periods)",
        "mrr": "Monthly recurring revenue at the end of the period's last computed day (docs/metrics.md#mrr)",
        "arr": "Annual recurring revenue: mrr × 12 (docs/metrics.md#mrr)",
        "new_revenue": "MRR of customers whose MRR went 0 → > 0 for the first time (docs/metrics.md#mrr-movements)",
        "churned_revenue": "Previous MRR of customers whose MRR went > 0 → 0 (docs/metrics.md#mrr-movements)",
        "expansion_revenue": "MRR added by customers whose MRR rose while > 0 (docs/metrics.md#mrr-movements)",
        "total_revenue": "Gross payment_completed amounts, refunds not subtracted (docs/metrics.md#payments)",
        "payment_count": "Payment attempts: payment_completed and payment_failed events (docs/metrics.md#payments)",
        "payment_success_count": "payment_completed events (docs/metrics.md#payments)",
        "refund_count": "payment_refunded events, in the period of the refund (docs/metrics.md#payments)",
        "refund_amount": "Sum of payment_refunded amounts, in the period of the refund (docs/metrics.md#payments)",
        "updated_at": "When the pipeline last wrote the row, UTC (docs/metrics.md#revenue_aggregates)",
        "contraction_revenue": "MRR lost by customers whose MRR fell while staying > 0 (docs/metrics.md#mrr-movements)",
        "reactivation_revenue": "MRR of customers whose MRR went 0 → > 0 again, having had MRR before (docs/metrics.md#mrr-movements)",
        "active_customers": "Customers with MRR > 0 at the end of the period's last computed day (docs/metrics.md#customers)",
        "new_customers": "Customers whose MRR went 0 → > 0 for the first time (docs/metrics.md#customers)",
        "reactivated_customers": "Customers whose MRR went 0 → > 0 again, having had MRR before (docs/metrics.md#customers)",
        "churned_customers": "Customers whose MRR went > 0 → 0 (docs/metrics.md#customers)",
        "ttm_cohort_mrr_before": "Month rows: MRR twelve months before of the customers who had MRR then (docs/metrics.md#ttm-nrr)",
        "ttm_cohort_mrr": "Month rows: those customers' MRR at the end of this month (docs/metrics.md#ttm-nrr)",
        "ttm_cohort_retained_mrr": "Month rows: sum of each one's lesser of the two MRRs (docs/metrics.md#ttm-grr)",
    },
    "subscription_events": {
        "event_id": "id of the subscription event in analytics_events (docs/metrics.md#monthly-value)",
        "tenant_id": "The organization the event belongs to (docs/metrics.md#monthly-value)",
        "user_id": "The customer (docs/metrics.md#mrr)",
        "subscription_id": "The subscription the event starts, changes or cancels (docs/metrics.md#monthly-value)",
        "event_type": "subscription_started, subscription_changed or subscription_cancelled (docs/metrics.md#monthly-value)",
        "occurred_at": "The event's timestamp, UTC (docs/metrics.md#monthly-value)",
        "monthly_value": "Price normalised to a month, rounded to cents; NULL for cancellations (docs/metrics.md#monthly-value)",
    },
    "tenant_mrr_days": {
        "tenant_id": "The organization (docs/metrics.md#mrr-state)",
        "day": "A day (UTC) on which the MRR of any of the tenant's customers changed (docs/metrics.md#mrr-state)",
        "mrr": "The tenant's MRR at the end of the day (docs/metrics.md#mrr)",
        "new_revenue": "The tenant's new MRR of the day (docs/metrics.md#mrr-movements)",
        "reactivation_revenue": "The tenant's reactivation MRR of the day (docs/metrics.md#mrr-movements)",
        "expansion_revenue": "The tenant's expansion MRR of the day (docs/metrics.md#mrr-movements)",
        "contraction_revenue": "The tenant's contraction MRR of the day (docs/metrics.md#mrr-movements)",
        "churned_revenue": "The tenant's churned MRR of the day (docs/metrics.md#mrr-movements)",
        "active_customers": "The tenant's customers with MRR > 0 at the end of the day (docs/metrics.md#customers)",
        "new_customers": "The tenant's new customers of the day (docs/metrics.md#customers)",
        "reactivated_customers": "The tenant's reactivated customers of the day (docs/metrics.md#customers)",
        "churned_customers": "The tenant's churned customers of the day (docs/metrics.md#customers)",
    },
    "tournament_aggregates": {
        "id": "Row key: tenant_id:period_type:period_start (docs/metrics.md#tournament_aggregates)",
        "tenant_id": "The organization the row belongs to; row-level security filters on it (docs/metrics.md#tournament_aggregates)",
        "period_start": "First day of the period (docs/metrics.md#periods)",
        "period_end": "Last day of the period, inclusive, also while it is running (docs/metrics.md#periods)",
        "period_type": "day, week (ISO), month, quarter or year (docs/metrics.md#periods)",
        "tournament_count": "Tournaments belonging to the period, cancelled ones included (docs/metrics.md#tournament-metrics)",
        "completed_count": "Of those, the tournaments with a tournament_completed event (docs/metrics.md#tournament-metrics)",
        "completion_rate": "completed_count / tournament_count × 100, in percent (docs/metrics.md#tournament-metrics)",
        "total_players": "Distinct (tournament, user) registrations of the period's tournaments (docs/metrics.md#tournament-metrics)",
        "avg_players": "total_players / tournament_count (docs/metrics.md#tournament-metrics)",
        "avg_duration_minutes": "Mean duration of the completed tournaments that have one; NULL when none has (docs/metrics.md#tournament-duration)",
        "most_popular_format": "The format most of the period's tournaments share; NULL when none has one (docs/metrics.md#most-popular-format)",
        "revenue": "payment_completed amounts naming one of the period's tournaments, whenever paid (docs/metrics.md#tournament-metrics)",
        "updated_at": "When the pipeline last wrote the row, UTC (docs/metrics.md#tournament_aggregates)",
    },
    "tournament_history": {
        "tenant_id": "The organization the tournament belongs to (docs/metrics.md#tournament-state)",
        "tournament_id": "The tournament_id its events name (docs/metrics.md#tournament-membership)",
        "tournament_day": "The day (UTC) the tournament belongs to; NULL while only payments name it (docs/metrics.md#tournament-membership)",
        "previous_tournament_day": "The day it belonged to before a late event moved it (docs/metrics.md#tournament-state)",
        "created_event_at": "Timestamp of its earliest tournament_created event (docs/metrics.md#tournament-membership)",
        "first_activity_at": "Timestamp of its earliest other tournament event (docs/metrics.md#tournament-membership)",
        "format": "The format of its earliest tournament_created event (docs/metrics.md#most-popular-format)",
        "started_at": "Timestamp of its earliest tournament_started event (docs/metrics.md#tournament-duration)",
        "completed_at": "Timestamp of its earliest tournament_completed event (docs/metrics.md#tournament-duration)",
        "completion_duration_minutes": "Its duration in minutes; NULL when it has none (docs/metrics.md#tournament-duration)",
        "player_ids": "Users with a player_registered event for it (docs/metrics.md#tournament-state)",
        "payment_amounts": "Amount by event id of the payment_completed events naming it (docs/metrics.md#tournament-state)",
        "player_count": "Number of player_ids (docs/metrics.md#tournament-state)",
        "revenue": "Sum of payment_amounts (docs/metrics.md#tournament-state)",
        "updated_at": "When the absorb last changed the row, UTC (docs/metrics.md#tournament-state)",
    },
    "user_activity_months": {
        "tenant_id": "The organization of the user (docs/metrics.md#cohort-state)",
        "user_id": "The user (docs/metrics.md#cohort-state)",
        "activity_month": "First day of a calendar month with any valid event of the user (docs/metrics.md#cohort-metrics)",
        "payment_amounts": "Amount by event id of the user's payment_completed events of the month (docs/metrics.md#cohort-state)",
        "revenue": "Sum of payment_amounts (docs/metrics.md#cohort-state)",
    },
    "user_cohorts": {
        "id": "Row key: tenant_id:cohort_month:month_number (docs/metrics.md#user_cohorts)",
        "tenant_id": "The organization the row belongs to; row-level security filters on it (docs/metrics.md#user_cohorts)",
        "cohort_month": "First day of the calendar month of the cohort's users' first user_signup (docs/metrics.md#cohort-metrics)",
        "cohort_size": "Users in the cohort (docs/metrics.md#cohort-metrics)",
        "month_number": "Months after the cohort month: the row describes cohort_month + month_number (docs/metrics.md#cohort-metrics)",
        "retained_users": "Cohort users with activity in the month; the whole cohort in month 0 (docs/metrics.md#cohort-metrics)",
        "retention_rate": "retained_users / cohort_size × 100, in percent (docs/metrics.md#cohort-metrics)",
        "revenue": "The cohort users' payment_completed amounts in the month (docs/metrics.md#cohort-metrics)",
        "ltv": "Cumulative revenue of months 0..month_number per user of the cohort (docs/metrics.md#cohort-metrics)",
        "updated_at": "When the pipeline last wrote the row, UTC (docs/metrics.md#user_cohorts)",
    },
    "user_signups": {
        "tenant_id": "The organization of the user (docs/metrics.md#cohort-state)",
        "user_id": "The user (docs/metrics.md#cohort-state)",
        "signed_up_at": "Timestamp of the user's first user_signup (docs/metrics.md#cohort-metrics)",
        "cohort_month": "First day of the calendar month of signed_up_at: the user's cohort (docs/metrics.md#cohort-metrics)",
        "updated_at": "When the absorb last changed the row, UTC (docs/metrics.md#cohort-state)",
    },
    "analytics_events": {
        "id": "Unique event id (docs/events.md#columns)",
        "tenant_id": "The organization the event belongs to (docs/events.md#columns)",
        "event_type": "One of the contract's event types; any other value is ignored by every metric (docs/events.md#event-types)",
        "event_data": "JSON object with the type's fields (docs/events.md#event-types)",
        "user_id": "The customer or player; NULL when no user is involved (docs/events.md#columns)",
        "session_id": "The user's session, for activity events; optional (docs/events.md#columns)",
        "timestamp": "When the event happened, UTC (docs/events.md#columns)",
        "created_at": "When the row was recorded, UTC; later than timestamp for a late event (docs/events.md#created_at-late-events-and-its-index)",
    },
    "revenue_kpis": {
        "tenant_id": "The organization the row belongs to; row-level security filters on it (docs/metrics.md#kpis)",
        "period_type": "day, week (ISO), month, quarter or year (docs/metrics.md#periods)",
        "period_start": "First day of the period (docs/metrics.md#periods)",
        "period_end": "Last day of the period, inclusive, also while it is running (docs/metrics.md#periods)",
        "mrr": "Monthly recurring revenue at the end of the period's last computed day (docs/metrics.md#mrr)",
        "arr": "Annual recurring revenue: mrr × 12 (docs/metrics.md#mrr)",
        "active_customers": "Customers with MRR > 0 at the end of the period's last computed day (docs/metrics.md#customers)",
        "new_customers": "Customers whose MRR went 0 → > 0 for the first time (docs/metrics.md#customers)",
        "reactivated_customers": "Customers whose MRR went 0 → > 0 again, having had MRR before (docs/metrics.md#customers)",
        "churned_customers": "Customers whose MRR went > 0 → 0 (docs/metrics.md#customers)",
        "opening_mrr": "MRR at the end of the day before the period, from the MRR bridge (docs/metrics.md#opening-mrr)",
        "opening_customers": "Active customers at the end of the day before the period (docs/metrics.md#opening-customers)",
        "arpa": "Average revenue per account: mrr / active_customers; NULL without customers (docs/metrics.md#arpa)",
        "logo_churn_rate": "churned_customers / opening_customers, a fraction; NULL when 0 opened (docs/metrics.md#logo-churn-rate)",
        "gross_mrr_churn_rate": "(churned + contraction) / opening MRR, a fraction (docs/metrics.md#gross-mrr-churn-rate)",
        "net_mrr_churn_rate": "(churned + contraction − expansion − reactivation) / opening MRR (docs/metrics.md#net-mrr-churn-rate)",
        "grr": "Gross revenue retention: (opening MRR − churned − contraction) / opening MRR (docs/metrics.md#grr)",
        "nrr": "Net revenue retention: (opening MRR + expansion − contraction − churned) / opening MRR (docs/metrics.md#nrr)",
        "quick_ratio": "(new + expansion + reactivation) / (churned + contraction); NULL when nothing was lost (docs/metrics.md#quick-ratio)",
        "ttm_nrr": "Share of the MRR of twelve months before kept by those customers now; months only (docs/metrics.md#ttm-nrr)",
        "ttm_grr": "As ttm_nrr with each customer's MRR capped at their MRR then; months only (docs/metrics.md#ttm-grr)",
    },
}


def upgrade() -> None:
    for table, columns in COMMENTS.items():
        for column, text in columns.items():
            op.alter_column(table, column, comment=text)


def downgrade() -> None:
    for table, columns in COMMENTS.items():
        for column, text in columns.items():
            op.alter_column(table, column, comment=None, existing_comment=text)

