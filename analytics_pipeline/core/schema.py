"""SQLAlchemy Core tables: the single source that the alembic revisions in migrations/ mirror.

`analytics_pipeline_tests/core/test_migrations.py` runs alembic's autogenerate comparison against this
metadata, so a column changed here without a revision (or the other way round) fails the suite.

All timestamps are UTC, stored as TIMESTAMP WITHOUT TIME ZONE as the specification says. Their
defaults are `timezone('utc', now())`, not `now()`, so that a row inserted by a session whose
TimeZone is not UTC (the platform's, say) still gets a UTC created_at, comparable with the events'
UTC `timestamp` (the event contract compares them).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

metadata = sa.MetaData()

NOW = sa.text("timezone('utc', now())")

# Revision 0010: money (and avg_duration_minutes) in NUMERIC(18,2), wider than the
# specification's DECIMAL(10,2) (docs/metrics.md#money-columns).
MONEY = sa.Numeric(18, 2)


class _PostgresType(sa.types.UserDefinedType):
    """A PostgreSQL type SQLAlchemy does not know, by name; registered for reflection so that the
    comparison with the migrations sees it."""

    cache_ok = True
    name = ""

    def get_col_spec(self, **kw) -> str:
        return self.name


class Xid8(_PostgresType):
    """A 64-bit transaction id (`pg_current_xact_id()`)."""

    name = "xid8"


class PgSnapshot(_PostgresType):
    """A transaction snapshot (`pg_current_snapshot()`): which transactions it sees as committed."""

    name = "pg_snapshot"


pg.base.ischema_names.setdefault("xid8", Xid8)
pg.base.ischema_names.setdefault("pg_snapshot", PgSnapshot)


def _tenant_fk() -> sa.Column:
    return sa.Column(
        "tenant_id",
        sa.Text,
        sa.ForeignKey("organizations.id", ondelete="CASCADE"),
        nullable=False,
    )


# --- Tables the platform owns (created by the base revision only where missing) -------------

organizations = sa.Table(
    "organizations",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False, server_default=NOW),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    _tenant_fk(),
    sa.Column("email", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime, nullable=False, server_default=NOW),
)

# Revision 0022: an organization's settings, written by the platform; without a row, the
# defaults (docs/reports.md#currency). No grant to analytics_app, like organizations.
organization_settings = sa.Table(
    "organization_settings",
    metadata,
    sa.Column("organization_id", sa.Text, sa.ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False, server_default=NOW),
    sa.CheckConstraint("currency ~ '^[A-Z]{3}$'", name="organization_settings_currency_check"),
)

# --- Revision 20251106_add_analytics_tables: the specification's five tables -----------------

analytics_events = sa.Table(
    "analytics_events",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    _tenant_fk(),
    sa.Column("event_type", sa.String(100), nullable=False),
    sa.Column("event_data", pg.JSONB, nullable=False),
    sa.Column("user_id", sa.Text, sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    sa.Column("session_id", sa.String(255), nullable=True),
    sa.Column("timestamp", sa.DateTime, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False, server_default=NOW),
    # Revision 0018: derived state absorbs by the inserting transaction, in commit order
    # (docs/ingestion.md); NULL on rows inserted before that revision.
    sa.Column(
        "ingest_xid",
        Xid8(),
        nullable=True,
        server_default=sa.text("pg_current_xact_id()"),
        comment=(
            "Id of the inserting transaction, set by the database; NULL if inserted before revision 0018. "
            "State absorbs in this order (docs/ingestion.md#commit-order)"
        ),
    ),
    sa.Index("analytics_events_tenant_id_event_type_idx", "tenant_id", "event_type"),
    sa.Index(
        "analytics_events_tenant_id_timestamp_idx", "tenant_id", sa.text('"timestamp" DESC')
    ),
    sa.Index("analytics_events_user_id_timestamp_idx", "user_id", sa.text('"timestamp" DESC')),
    sa.Index("analytics_events_ingest_xid_idx", sa.text("ingest_xid NULLS FIRST")),
)

CUSTOMER_COUNTS = ("active_customers", "new_customers", "reactivated_customers", "churned_customers")


def _customer_counts() -> list[sa.Column]:
    return [sa.Column(c, sa.Integer, nullable=False, server_default="0") for c in CUSTOMER_COUNTS]


revenue_aggregates = sa.Table(
    "revenue_aggregates",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    _tenant_fk(),
    sa.Column("period_start", sa.Date, nullable=False),
    sa.Column("period_end", sa.Date, nullable=False),
    sa.Column("period_type", sa.String(20), nullable=False),
    sa.Column("mrr", MONEY, nullable=False),
    sa.Column("arr", MONEY, nullable=False),
    sa.Column("new_revenue", MONEY, nullable=False),
    sa.Column("churned_revenue", MONEY, nullable=False),
    sa.Column("expansion_revenue", MONEY, nullable=False),
    sa.Column("total_revenue", MONEY, nullable=False),
    sa.Column("payment_count", sa.Integer, nullable=False),
    sa.Column("payment_success_count", sa.Integer, nullable=False),
    sa.Column("refund_count", sa.Integer, nullable=False),
    sa.Column("refund_amount", MONEY, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False, server_default=NOW),
    # Revision 0005: needed so that the MRR bridge closes (docs/metrics.md#mrr-movements).
    sa.Column("contraction_revenue", MONEY, nullable=False, server_default="0"),
    sa.Column("reactivation_revenue", MONEY, nullable=False, server_default="0"),
    # Revision 0015: the customer counts (docs/metrics.md#customers).
    *_customer_counts(),
    # Revision 0015, month rows only: the trailing-twelve-month cohort's MRR twelve months before,
    # now, and now capped at then (docs/metrics.md#ttm-nrr).
    sa.Column("ttm_cohort_mrr_before", MONEY, nullable=True),
    sa.Column("ttm_cohort_mrr", MONEY, nullable=True),
    sa.Column("ttm_cohort_retained_mrr", MONEY, nullable=True),
    sa.UniqueConstraint(
        "tenant_id",
        "period_type",
        "period_start",
        name="revenue_aggregates_tenant_id_period_type_period_start_key",
    ),
    sa.Index(
        "revenue_aggregates_tenant_id_period_start_idx",
        "tenant_id",
        sa.text("period_start DESC"),
    ),
)

user_cohorts = sa.Table(
    "user_cohorts",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    _tenant_fk(),
    sa.Column("cohort_month", sa.Date, nullable=False),
    sa.Column("cohort_size", sa.Integer, nullable=False),
    sa.Column("month_number", sa.Integer, nullable=False),
    sa.Column("retained_users", sa.Integer, nullable=False),
    sa.Column("retention_rate", sa.Numeric(5, 2), nullable=False),
    sa.Column("revenue", MONEY, nullable=False),
    sa.Column("ltv", MONEY, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False, server_default=NOW),
    sa.UniqueConstraint(
        "tenant_id",
        "cohort_month",
        "month_number",
        name="user_cohorts_tenant_id_cohort_month_month_number_key",
    ),
    sa.Index(
        "user_cohorts_tenant_id_cohort_month_idx", "tenant_id", sa.text("cohort_month DESC")
    ),
)

tournament_aggregates = sa.Table(
    "tournament_aggregates",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    _tenant_fk(),
    sa.Column("period_start", sa.Date, nullable=False),
    sa.Column("period_end", sa.Date, nullable=False),
    sa.Column("period_type", sa.String(20), nullable=False),
    sa.Column("tournament_count", sa.Integer, nullable=False),
    sa.Column("completed_count", sa.Integer, nullable=False),
    sa.Column("completion_rate", sa.Numeric(5, 2), nullable=False),
    sa.Column("total_players", sa.Integer, nullable=False),
    sa.Column("avg_players", sa.Numeric(10, 2), nullable=False),
    sa.Column("avg_duration_minutes", MONEY, nullable=True),
    sa.Column("most_popular_format", sa.String(100), nullable=True),
    sa.Column("revenue", MONEY, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False, server_default=NOW),
    sa.UniqueConstraint(
        "tenant_id",
        "period_type",
        "period_start",
        name="tournament_aggregates_tenant_id_period_type_period_start_key",
    ),
    sa.Index(
        "tournament_aggregates_tenant_id_period_start_idx",
        "tenant_id",
        sa.text("period_start DESC"),
    ),
)

scheduled_reports = sa.Table(
    "scheduled_reports",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    _tenant_fk(),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("report_type", sa.String(50), nullable=False),
    sa.Column("frequency", sa.String(20), nullable=False),
    sa.Column("recipients", pg.ARRAY(sa.Text), nullable=False),
    sa.Column("parameters", pg.JSONB, nullable=True),
    sa.Column("last_run_at", sa.DateTime, nullable=True),
    sa.Column("next_run_at", sa.DateTime, nullable=False),
    sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("created_at", sa.DateTime, nullable=False, server_default=NOW),
    sa.Column("updated_at", sa.DateTime, nullable=False, server_default=NOW),
    sa.Index("scheduled_reports_tenant_id_idx", "tenant_id"),
    sa.Index("scheduled_reports_next_run_at_idx", "next_run_at"),
)

# The five tables of the specification, in creation order; all carry tenant_id and RLS policies.
SPEC_TABLES = (
    analytics_events,
    revenue_aggregates,
    user_cohorts,
    tournament_aggregates,
    scheduled_reports,
)

# --- Derived state and delivery tables (added by later revisions, one section per owner) ------

# Revision 0005: how far each derived state has absorbed analytics_events (analytics_pipeline/aggregation/state.py);
# revision 0018: by the snapshot of its last absorb (docs/ingestion.md).
state_watermarks = sa.Table(
    "state_watermarks",
    metadata,
    sa.Column("state_name", sa.Text, primary_key=True),
    sa.Column("absorbed_through", sa.DateTime, nullable=True,
              comment="When the state's last absorb read analytics_events (UTC)."),
    sa.Column(
        "absorbed_snapshot",
        PgSnapshot(),
        nullable=True,
        comment=(
            "The snapshot of the state's last absorb: every event whose ingest_xid is visible in it is in the "
            "state; NULL before its first (docs/ingestion.md#commit-order)"
        ),
    ),
    sa.Column("updated_at", sa.DateTime, nullable=False, server_default=NOW),
)

# Revision 0019: when each aggregate was last materialized, written by its runs inside their
# transaction (aggregation/runs.py, record_freshness) and read by the Dashboard API as analytics_app
# (SELECT only). No tenant_id: a run covers every tenant.
aggregate_freshness = sa.Table(
    "aggregate_freshness",
    metadata,
    sa.Column("aggregate", sa.Text, primary_key=True,
              comment=("The aggregate's asset name, which is its table's: one of the aggregates the code "
                       "location's domains declare (docs/api.md#freshness).")),
    sa.Column(
        "materialized_at",
        sa.DateTime,
        nullable=False,
        comment=(
            "When its last committed run began computing, UTC: its rows hold every event committed "
            "before (docs/api.md#freshness)."
        ),
    ),
)

# Revision 0005: the subscription history MRR is computed from. A compact copy of the valid
# subscription events, kept after raw events are purged (docs/metrics.md#monthly-value).
subscription_events = sa.Table(
    "subscription_events",
    metadata,
    sa.Column("event_id", sa.Text, primary_key=True),
    _tenant_fk(),
    sa.Column("user_id", sa.Text, nullable=False),
    sa.Column("subscription_id", sa.Text, nullable=False),
    sa.Column("event_type", sa.String(100), nullable=False),
    sa.Column("occurred_at", sa.DateTime, nullable=False),
    sa.Column("monthly_value", MONEY, nullable=True),
    # Revision 0021: what the segments group by (docs/metrics.md#segment-state).
    sa.Column("plan_id", sa.Text, nullable=True),
    sa.Column("billing_interval", sa.Text, nullable=True),
    sa.Index(
        "subscription_events_subscription_idx",
        "tenant_id",
        "user_id",
        "subscription_id",
        "occurred_at",
    ),
)

# Revision 0012: the payment history revenue_aggregates computes payments, attempts and refunds
# from (docs/metrics.md#payment-history): one row per valid payment event, kept after raw events
# are purged.
payment_events = sa.Table(
    "payment_events",
    metadata,
    sa.Column("event_id", sa.Text, primary_key=True),
    _tenant_fk(),
    sa.Column("event_type", sa.String(100), nullable=False),
    sa.Column("occurred_at", sa.DateTime, nullable=False),
    sa.Column("amount", sa.Numeric(18, 2), nullable=False),
    sa.Index("payment_events_occurred_at_idx", "occurred_at"),
)

def _mrr_day_columns() -> list[sa.Column]:
    """MRR at the end of a day and the day's movements, in both MRR state tables."""
    return [
        sa.Column(c, sa.Numeric, nullable=False)
        for c in ("mrr", "new_revenue", "reactivation_revenue", "expansion_revenue",
                  "contraction_revenue", "churned_revenue")
    ]


# Revision 0014: the MRR state, maintained by the subscription history's absorb for the customers
# with new subscription events only, from the earliest day those events change
# (docs/metrics.md#mrr-state). One row per customer and day on which the customer's MRR changed:
# their MRR at the end of the day and that day's movement. Amounts are unbounded NUMERIC, like the
# other state sums: a tenant's MRR no aggregate column can hold is held back by the aggregate
# (values_fit_columns), never a failed absorb for every tenant.
customer_mrr_days = sa.Table(
    "customer_mrr_days",
    metadata,
    _tenant_fk(),
    sa.Column("user_id", sa.Text, nullable=False),
    sa.Column("day", sa.Date, nullable=False),
    *_mrr_day_columns(),
    sa.PrimaryKeyConstraint("tenant_id", "user_id", "day", name="customer_mrr_days_pkey"),
    sa.Index("customer_mrr_days_tenant_day_idx", "tenant_id", "day"),
)

# The tenant's sums of customer_mrr_days per day on which any customer's MRR changed, with the
# tenant's MRR at the end of that day: a window's opening MRR is one index lookup per tenant.
tenant_mrr_days = sa.Table(
    "tenant_mrr_days",
    metadata,
    _tenant_fk(),
    sa.Column("day", sa.Date, nullable=False),
    *_mrr_day_columns(),
    # Revision 0015: the customer counts of the day (docs/metrics.md#customers).
    *_customer_counts(),
    sa.PrimaryKeyConstraint("tenant_id", "day", name="tenant_mrr_days_pkey"),
)

# Revision 0021: the segment state (docs/metrics.md#segment-state). Each customer's acquisition
# source, from their first user_signup; absorbed with the subscription and payment histories.
customer_sources = sa.Table(
    "customer_sources",
    metadata,
    _tenant_fk(),
    sa.Column("user_id", sa.Text, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("signed_up_at", sa.DateTime, nullable=False),
    sa.Column("event_id", sa.Text, nullable=False),
    sa.PrimaryKeyConstraint("tenant_id", "user_id", name="customer_sources_pkey"),
)

SEGMENT_DIMENSIONS = ("plan", "interval", "source")
SEGMENT_MOVEMENTS = (
    "new_revenue", "reactivation_revenue", "expansion_revenue", "contraction_revenue", "churned_revenue",
    "transfer_in_revenue", "transfer_out_revenue",
)
SEGMENT_CUSTOMER_COUNTS = (*CUSTOMER_COUNTS, "transferred_in_customers", "transferred_out_customers")


def _segment_day_columns() -> list[sa.Column]:
    """A value's MRR at the end of a day, the day's movements and transfers, its active customers
    at the end of the day and the day's customer flows, in both segment state tables."""
    return [
        sa.Column("dimension", sa.Text, nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        *(sa.Column(c, sa.Numeric, nullable=False) for c in ("mrr", *SEGMENT_MOVEMENTS)),
        *(sa.Column(c, sa.Integer, nullable=False) for c in SEGMENT_CUSTOMER_COUNTS),
    ]


# Per customer, dimension, value and day on which the customer's MRR in that value, or the value
# they count in, changed; maintained with the MRR state, for the same changed customers.
customer_segment_days = sa.Table(
    "customer_segment_days",
    metadata,
    _tenant_fk(),
    sa.Column("user_id", sa.Text, nullable=False),
    *_segment_day_columns(),
    sa.PrimaryKeyConstraint("tenant_id", "user_id", "dimension", "value", "day", name="customer_segment_days_pkey"),
    sa.Index("customer_segment_days_tenant_day_idx", "tenant_id", "day"),
)

# The tenant's sums of customer_segment_days per dimension, value and day, with the value's MRR and
# active customers at the end of the day: a window's opening is one lookup per tenant and value.
tenant_segment_days = sa.Table(
    "tenant_segment_days",
    metadata,
    _tenant_fk(),
    *_segment_day_columns(),
    sa.PrimaryKeyConstraint("tenant_id", "dimension", "value", "day", name="tenant_segment_days_pkey"),
    sa.Index("tenant_segment_days_day_idx", "day"),
)

# Which tenants' segment state each absorb changed, from which day: the new-events sensor asks
# revenue_segments to recompute those days once the absorb has committed (docs/metrics.md#segment-state).
segment_state_changes = sa.Table(
    "segment_state_changes",
    metadata,
    _tenant_fk(),
    sa.Column("from_day", sa.Date, nullable=False),
    sa.Column("ingest_xid", Xid8(), nullable=False, server_default=sa.text("pg_current_xact_id()")),
    sa.Column("recorded_at", sa.DateTime, nullable=False, server_default=NOW),
    sa.Index("segment_state_changes_ingest_xid_idx", "ingest_xid"),
    sa.Index("segment_state_changes_recorded_at_idx", "recorded_at"),
)

# Revision 0021: revenue by segment (docs/metrics.md#revenue_segments). Its tenant is an
# organization as everywhere else, checked by the triggers of revision 0027 (an insert's once
# per statement) instead of a foreign key's check per row: a backfill writes a million rows.
revenue_segments = sa.Table(
    "revenue_segments",
    metadata,
    sa.Column("id", sa.Text, nullable=False),
    sa.Column("tenant_id", sa.Text, nullable=False),
    sa.Column("period_start", sa.Date, nullable=False),
    sa.Column("period_end", sa.Date, nullable=False),
    sa.Column("period_type", sa.String(20), nullable=False),
    sa.Column("dimension", sa.String(20), nullable=False),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("mrr", MONEY, nullable=False),
    sa.Column("arr", MONEY, nullable=False),
    *(sa.Column(c, MONEY, nullable=False) for c in SEGMENT_MOVEMENTS),
    *(sa.Column(c, sa.Integer, nullable=False) for c in SEGMENT_CUSTOMER_COUNTS),
    sa.Column("updated_at", sa.DateTime, nullable=False, server_default=NOW),
    # Revision 0026: the row's key is the primary key; id, the same key as one string, unindexed.
    sa.PrimaryKeyConstraint(
        "tenant_id", "period_type", "dimension", "period_start", "value", name="revenue_segments_pkey",
    ),
    sa.Index("revenue_segments_period_start_idx", "period_start", "period_type"),
)

# Revision 0024: the retention triangle by segment (docs/metrics.md#user_cohort_segments).
COHORT_SEGMENT_DIMENSIONS = ("first_plan", "source")
user_cohort_segments = sa.Table(
    "user_cohort_segments",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    _tenant_fk(),
    sa.Column("cohort_month", sa.Date, nullable=False),
    sa.Column("month_number", sa.Integer, nullable=False),
    sa.Column("dimension", sa.String(20), nullable=False),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("cohort_size", sa.Integer, nullable=False),
    sa.Column("retained_users", sa.Integer, nullable=False),
    sa.Column("retention_rate", sa.Numeric(5, 4), nullable=False),
    sa.Column("revenue", MONEY, nullable=False),
    sa.Column("ltv", MONEY, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False, server_default=NOW),
    sa.UniqueConstraint(
        "tenant_id", "dimension", "value", "cohort_month", "month_number",
        name="user_cohort_segments_tenant_dimension_value_cohort_key",
    ),
    sa.Index("user_cohort_segments_tenant_cohort_month_idx", "tenant_id", sa.text("cohort_month DESC")),
)

# Revision 0007: what the scheduled_reports columns may hold, and the log of report deliveries
# (analytics_pipeline/reports/delivery.py describes the protocol).
REPORT_TYPES = ("revenue_summary", "user_analytics", "tournament_performance", "comprehensive")
FREQUENCIES = ("daily", "weekly", "monthly")
# `skipped` and `unsubscribed`, and the trigger `unsubscribe`: revision 0013.
DELIVERY_STATUSES = ("sending", "retrying", "sent", "failed", "skipped", "unsubscribed")
DELIVERY_TRIGGERS = ("schedule", "manual", "unsubscribe")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


scheduled_reports.append_constraint(
    sa.CheckConstraint(_in("report_type", REPORT_TYPES), name="scheduled_reports_report_type_check")
)
scheduled_reports.append_constraint(
    sa.CheckConstraint(_in("frequency", FREQUENCIES), name="scheduled_reports_frequency_check")
)

report_deliveries = sa.Table(
    "report_deliveries",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
    sa.Column(
        "report_id",
        sa.Text,
        sa.ForeignKey("scheduled_reports.id", ondelete="CASCADE"),
        nullable=False,
    ),
    _tenant_fk(),
    # The occurrence of the schedule this delivery is for (naive UTC); for `send-now`, the moment
    # of the command.
    sa.Column("scheduled_for", sa.DateTime, nullable=False),
    sa.Column("trigger", sa.String(20), nullable=False, server_default="schedule"),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("message_id", sa.Text, nullable=True),
    sa.Column("recipients", pg.ARRAY(sa.Text), nullable=True),
    # {address: the server's reply} for recipients refused while the others were sent to.
    sa.Column("refused_recipients", pg.JSONB, nullable=True),
    # The report's period, local dates of the report's time zone, [period_start, period_end].
    sa.Column("period_start", sa.Date, nullable=True),
    sa.Column("period_end", sa.Date, nullable=True),
    sa.Column("claimed_at", sa.DateTime, nullable=True),
    sa.Column("next_attempt_at", sa.DateTime, nullable=True),
    sa.Column("sent_at", sa.DateTime, nullable=True),
    sa.Column("created_at", sa.DateTime, nullable=False, server_default=NOW),
    sa.Column("updated_at", sa.DateTime, nullable=False, server_default=NOW),
    # Revision 0013: `email` or a report_channels.id; each channel of an occurrence is delivered once.
    sa.Column("channel", sa.Text, nullable=False, server_default="email"),
    # Revision 0013: {recipient: Message-ID} of the recipients that have their copy (one message
    # per recipient, each with its own unsubscribe link); a retry sends to the others only.
    sa.Column("delivered_to", pg.JSONB, nullable=True),
    sa.UniqueConstraint(
        "report_id", "scheduled_for", "channel", name="report_deliveries_report_id_scheduled_for_channel_key"
    ),
    sa.CheckConstraint(_in("status", DELIVERY_STATUSES), name="report_deliveries_status_check"),
    sa.CheckConstraint(_in("trigger", DELIVERY_TRIGGERS), name="report_deliveries_trigger_check"),
    sa.Index("report_deliveries_tenant_id_scheduled_for_idx", "tenant_id", sa.text("scheduled_for DESC")),
)

# Revision 0022: what `reports edit` changed in a report, when and by whom (reports/cli.py).
report_changes = sa.Table(
    "report_changes",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
    sa.Column("report_id", sa.Text, sa.ForeignKey("scheduled_reports.id", ondelete="CASCADE"), nullable=False),
    sa.Column("changed_at", sa.DateTime, nullable=False, server_default=NOW),
    sa.Column("changed_by", sa.Text, nullable=False),
    sa.Column("changes", pg.JSONB, nullable=False),
    sa.Index("report_changes_report_id_idx", "report_id", "changed_at"),
)

# Revision 0013: where a report goes besides email (analytics_pipeline/reports/channels.py).
CHANNEL_KINDS = ("webhook", "slack")

report_channels = sa.Table(
    "report_channels",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column(
        "report_id",
        sa.Text,
        sa.ForeignKey("scheduled_reports.id", ondelete="CASCADE"),
        nullable=False,
    ),
    _tenant_fk(),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    # The HMAC-SHA256 key of a webhook's signature; NULL for Slack, whose URL is the secret.
    sa.Column("secret", sa.Text, nullable=True),
    sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("created_at", sa.DateTime, nullable=False, server_default=NOW),
    sa.CheckConstraint(_in("kind", CHANNEL_KINDS), name="report_channels_kind_check"),
    sa.Index("report_channels_report_id_idx", "report_id"),
)

# Revision 0006: derived state of tournament_aggregates and user_cohorts. It outlives the raw
# events (retention never purges it), so old periods and old cohorts keep their numbers.
# Meanings: docs/metrics.md#tournament-state and docs/metrics.md#cohort-state.

tournament_history = sa.Table(
    "tournament_history",
    metadata,
    _tenant_fk(),
    sa.Column("tournament_id", sa.Text, nullable=False),
    # NULL while only payments name the tournament: it is not a tournament of any period yet.
    sa.Column("tournament_day", sa.Date, nullable=True),
    # The day it belonged to before a late event moved it; the new-events sensor recomputes both.
    sa.Column("previous_tournament_day", sa.Date, nullable=True),
    sa.Column("created_event_at", sa.DateTime, nullable=True),
    sa.Column("first_activity_at", sa.DateTime, nullable=True),
    sa.Column("format", sa.Text, nullable=True),
    sa.Column("started_at", sa.DateTime, nullable=True),
    sa.Column("completed_at", sa.DateTime, nullable=True),
    sa.Column("completion_duration_minutes", sa.Numeric, nullable=True),
    # The set of registered players and {payment event id: amount}: absorbing an event twice
    # changes neither; player_count and revenue are derived from them on every change.
    sa.Column("player_ids", pg.ARRAY(sa.Text), nullable=False, server_default="{}"),
    sa.Column("payment_amounts", pg.JSONB, nullable=False, server_default="{}"),
    sa.Column("player_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("revenue", sa.Numeric, nullable=False, server_default="0"),
    sa.Column("updated_at", sa.DateTime, nullable=False, server_default=NOW),
    sa.PrimaryKeyConstraint("tenant_id", "tournament_id", name="tournament_history_pkey"),
    sa.Index("tournament_history_tournament_day_idx", "tournament_day"),
)

user_signups = sa.Table(
    "user_signups",
    metadata,
    _tenant_fk(),
    sa.Column("user_id", sa.Text, nullable=False),
    sa.Column("signed_up_at", sa.DateTime, nullable=False),
    sa.Column("cohort_month", sa.Date, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False, server_default=NOW),
    sa.PrimaryKeyConstraint("tenant_id", "user_id", name="user_signups_pkey"),
    sa.Index("user_signups_tenant_id_cohort_month_idx", "tenant_id", "cohort_month"),
)

user_activity_months = sa.Table(
    "user_activity_months",
    metadata,
    _tenant_fk(),
    sa.Column("user_id", sa.Text, nullable=False),
    sa.Column("activity_month", sa.Date, nullable=False),
    # {payment event id: amount} of the month, so that absorbing a payment twice adds nothing;
    # revenue is their sum.
    sa.Column("payment_amounts", pg.JSONB, nullable=False, server_default="{}"),
    sa.Column("revenue", sa.Numeric, nullable=False, server_default="0"),
    sa.PrimaryKeyConstraint("tenant_id", "user_id", "activity_month", name="user_activity_months_pkey"),
    sa.Index("user_activity_months_activity_month_idx", "activity_month"),
)

# Malformed events as the derived states met them (a copy, so nothing is lost when raw events are
# purged): the runs count them per window from here instead of re-validating every raw event.
malformed_events = sa.Table(
    "malformed_events",
    metadata,
    sa.Column("event_id", sa.Text, primary_key=True),
    _tenant_fk(),
    sa.Column("event_type", sa.String(100), nullable=False),
    sa.Column("event_data", pg.JSONB, nullable=False),
    sa.Column("user_id", sa.Text, nullable=True),
    sa.Column("timestamp", sa.DateTime, nullable=False),
    sa.Column("problem", sa.Text, nullable=False),
    sa.Index("malformed_events_timestamp_idx", "timestamp"),
)

# Every table of this project whose rows belong to one tenant: each has row-level security for
# `analytics_app` (revisions 0003, 0007, 0009, 0012, 0013 and 0014; SQLAlchemy does not model policies, so
# test_row_level_security.py checks them in the catalog). The platform's `users` also has a
# tenant_id, but it is not ours and `analytics_app` has no grant on it.
TENANT_TABLES = (
    *SPEC_TABLES,
    subscription_events,
    payment_events,
    customer_mrr_days,
    tenant_mrr_days,
    customer_sources,
    customer_segment_days,
    tenant_segment_days,
    segment_state_changes,
    revenue_segments,
    user_cohort_segments,
    report_deliveries,
    report_channels,
    tournament_history,
    user_signups,
    user_activity_months,
    malformed_events,
)


# --- Views -----------------------------------------------------------------------------------------
# Modelled for their column descriptions only; alembic does not compare views, so they are kept
# apart from `metadata`. The revision that creates one holds its SQL.
views = sa.MetaData()

# Revision 0015: the SaaS KPIs of every revenue_aggregates row (docs/metrics.md#kpis), under the
# querying role's row-level security (security_invoker).
revenue_kpis = sa.Table(
    "revenue_kpis",
    views,
    sa.Column("tenant_id", sa.Text),
    sa.Column("period_type", sa.String(20)),
    sa.Column("period_start", sa.Date),
    sa.Column("period_end", sa.Date),
    sa.Column("mrr", MONEY),
    sa.Column("arr", MONEY),
    sa.Column("active_customers", sa.Integer),
    sa.Column("new_customers", sa.Integer),
    sa.Column("reactivated_customers", sa.Integer),
    sa.Column("churned_customers", sa.Integer),
    sa.Column("opening_mrr", sa.Numeric),
    sa.Column("opening_customers", sa.Integer),
    sa.Column("arpa", sa.Numeric),
    sa.Column("logo_churn_rate", sa.Numeric),
    sa.Column("gross_mrr_churn_rate", sa.Numeric),
    sa.Column("net_mrr_churn_rate", sa.Numeric),
    sa.Column("grr", sa.Numeric),
    sa.Column("nrr", sa.Numeric),
    sa.Column("quick_ratio", sa.Numeric),
    sa.Column("ttm_nrr", sa.Numeric),
    sa.Column("ttm_grr", sa.Numeric),
)


# --- Column descriptions ------------------------------------------------------------------------
# One line per column of every table (and view) an asset writes or shows: what a value means,
# ending with the docs section that defines it. They are the columns' COMMENTs in the database (revision
# 0016_column_comments; test_migrations.py compares them) and the assets' `dagster/column_schema`
# (core/table_metadata.py), so the UI, psql's \d+ and the docs say the same.


_PERIOD_DESCRIPTIONS = {
    "period_start": "First day of the period (docs/metrics.md#periods)",
    "period_end": "Last day of the period, inclusive, also while it is running (docs/metrics.md#periods)",
    "period_type": "day, week (ISO), month, quarter or year (docs/metrics.md#periods)",
}


def _describe(table: sa.Table, **descriptions: str) -> None:
    unknown = set(descriptions) - set(table.c.keys())
    if unknown:
        raise KeyError(f"{table.name} has no column {', '.join(sorted(unknown))}")
    for name, text in descriptions.items():
        table.c[name].comment = text


_describe(
    analytics_events,
    id="Unique event id (docs/events.md#columns)",
    tenant_id="The organization the event belongs to (docs/events.md#columns)",
    event_type="One of the contract's event types; any other value is ignored by every metric (docs/events.md#event-types)",
    event_data="JSON object with the type's fields (docs/events.md#event-types)",
    user_id="The customer or player; NULL when no user is involved (docs/events.md#columns)",
    session_id="The user's session, for activity events; optional (docs/events.md#columns)",
    timestamp="When the event happened, UTC (docs/events.md#columns)",
    created_at="When the row was recorded, UTC; later than timestamp for a late event (docs/events.md#created_at-ingest_xid-and-late-events)",
)

_describe(
    revenue_aggregates,
    id="Row key: tenant_id:period_type:period_start (docs/metrics.md#revenue_aggregates)",
    tenant_id="The organization the row belongs to; row-level security filters on it (docs/metrics.md#revenue_aggregates)",
    **_PERIOD_DESCRIPTIONS,
    mrr="Monthly recurring revenue at the end of the period's last computed day (docs/metrics.md#mrr)",
    arr="Annual recurring revenue: mrr × 12 (docs/metrics.md#mrr)",
    new_revenue="MRR of customers whose MRR went 0 → > 0 for the first time (docs/metrics.md#mrr-movements)",
    churned_revenue="Previous MRR of customers whose MRR went > 0 → 0 (docs/metrics.md#mrr-movements)",
    expansion_revenue="MRR added by customers whose MRR rose while > 0 (docs/metrics.md#mrr-movements)",
    total_revenue="Gross payment_completed amounts, refunds not subtracted (docs/metrics.md#payments)",
    payment_count="Payment attempts: payment_completed and payment_failed events (docs/metrics.md#payments)",
    payment_success_count="payment_completed events (docs/metrics.md#payments)",
    refund_count="payment_refunded events, in the period of the refund (docs/metrics.md#payments)",
    refund_amount="Sum of payment_refunded amounts, in the period of the refund (docs/metrics.md#payments)",
    updated_at="When the pipeline last wrote the row, UTC (docs/metrics.md#revenue_aggregates)",
    contraction_revenue="MRR lost by customers whose MRR fell while staying > 0 (docs/metrics.md#mrr-movements)",
    reactivation_revenue="MRR of customers whose MRR went 0 → > 0 again, having had MRR before (docs/metrics.md#mrr-movements)",
    active_customers="Customers with MRR > 0 at the end of the period's last computed day (docs/metrics.md#customers)",
    new_customers="Customers whose MRR went 0 → > 0 for the first time (docs/metrics.md#customers)",
    reactivated_customers="Customers whose MRR went 0 → > 0 again, having had MRR before (docs/metrics.md#customers)",
    churned_customers="Customers whose MRR went > 0 → 0 (docs/metrics.md#customers)",
    ttm_cohort_mrr_before="Month rows: MRR twelve months before of the customers who had MRR then (docs/metrics.md#ttm-nrr)",
    ttm_cohort_mrr="Month rows: those customers' MRR at the end of this month (docs/metrics.md#ttm-nrr)",
    ttm_cohort_retained_mrr="Month rows: sum of each one's lesser of the two MRRs (docs/metrics.md#ttm-grr)",
)

_describe(
    user_cohorts,
    id="Row key: tenant_id:cohort_month:month_number (docs/metrics.md#user_cohorts)",
    tenant_id="The organization the row belongs to; row-level security filters on it (docs/metrics.md#user_cohorts)",
    cohort_month="First day of the calendar month of the cohort's users' first user_signup (docs/metrics.md#cohort-metrics)",
    cohort_size="Users in the cohort (docs/metrics.md#cohort-metrics)",
    month_number="Months after the cohort month: the row describes cohort_month + month_number (docs/metrics.md#cohort-metrics)",
    retained_users="Cohort users with activity in the month; the whole cohort in month 0 (docs/metrics.md#cohort-metrics)",
    retention_rate="retained_users / cohort_size × 100, in percent (docs/metrics.md#cohort-metrics)",
    revenue="The cohort users' payment_completed amounts in the month (docs/metrics.md#cohort-metrics)",
    ltv="Cumulative revenue of months 0..month_number per user of the cohort (docs/metrics.md#cohort-metrics)",
    updated_at="When the pipeline last wrote the row, UTC (docs/metrics.md#user_cohorts)",
)

_describe(
    tournament_aggregates,
    id="Row key: tenant_id:period_type:period_start (docs/metrics.md#tournament_aggregates)",
    tenant_id="The organization the row belongs to; row-level security filters on it (docs/metrics.md#tournament_aggregates)",
    **_PERIOD_DESCRIPTIONS,
    tournament_count="Tournaments belonging to the period, cancelled ones included (docs/metrics.md#tournament-metrics)",
    completed_count="Of those, the tournaments with a tournament_completed event (docs/metrics.md#tournament-metrics)",
    completion_rate="completed_count / tournament_count × 100, in percent (docs/metrics.md#tournament-metrics)",
    total_players="Distinct (tournament, user) registrations of the period's tournaments (docs/metrics.md#tournament-metrics)",
    avg_players="total_players / tournament_count (docs/metrics.md#tournament-metrics)",
    avg_duration_minutes="Mean duration of the completed tournaments that have one; NULL when none has (docs/metrics.md#tournament-duration)",
    most_popular_format="The format most of the period's tournaments share; NULL when none has one (docs/metrics.md#most-popular-format)",
    revenue="payment_completed amounts naming one of the period's tournaments, whenever paid (docs/metrics.md#tournament-metrics)",
    updated_at="When the pipeline last wrote the row, UTC (docs/metrics.md#tournament_aggregates)",
)

_describe(
    subscription_events,
    event_id="id of the subscription event in analytics_events (docs/metrics.md#monthly-value)",
    tenant_id="The organization the event belongs to (docs/metrics.md#monthly-value)",
    user_id="The customer (docs/metrics.md#mrr)",
    subscription_id="The subscription the event starts, changes or cancels (docs/metrics.md#monthly-value)",
    event_type="subscription_started, subscription_changed or subscription_cancelled (docs/metrics.md#monthly-value)",
    occurred_at="The event's timestamp, UTC (docs/metrics.md#monthly-value)",
    monthly_value="Price normalised to a month, rounded to cents; NULL for cancellations (docs/metrics.md#monthly-value)",
)

_describe(
    payment_events,
    event_id="id of the payment event in analytics_events (docs/metrics.md#payment-history)",
    tenant_id="The organization the event belongs to (docs/metrics.md#payment-history)",
    event_type="payment_completed, payment_failed or payment_refunded (docs/metrics.md#payment-history)",
    occurred_at="The event's timestamp, UTC (docs/metrics.md#payment-history)",
    amount="The event's amount in currency units, rounded to cents (docs/metrics.md#payment-history)",
)

_describe(
    customer_mrr_days,
    tenant_id="The organization of the customer (docs/metrics.md#mrr-state)",
    user_id="The customer (docs/metrics.md#mrr-state)",
    day="A day (UTC) on which the customer's MRR changed (docs/metrics.md#mrr-state)",
    mrr="The customer's MRR at the end of the day (docs/metrics.md#mrr)",
    new_revenue="The customer's new MRR of the day (docs/metrics.md#mrr-movements)",
    reactivation_revenue="The customer's reactivation MRR of the day (docs/metrics.md#mrr-movements)",
    expansion_revenue="The customer's expansion MRR of the day (docs/metrics.md#mrr-movements)",
    contraction_revenue="The customer's contraction MRR of the day (docs/metrics.md#mrr-movements)",
    churned_revenue="The customer's churned MRR of the day (docs/metrics.md#mrr-movements)",
)

_describe(
    tenant_mrr_days,
    tenant_id="The organization (docs/metrics.md#mrr-state)",
    day="A day (UTC) on which the MRR of any of the tenant's customers changed (docs/metrics.md#mrr-state)",
    mrr="The tenant's MRR at the end of the day (docs/metrics.md#mrr)",
    new_revenue="The tenant's new MRR of the day (docs/metrics.md#mrr-movements)",
    reactivation_revenue="The tenant's reactivation MRR of the day (docs/metrics.md#mrr-movements)",
    expansion_revenue="The tenant's expansion MRR of the day (docs/metrics.md#mrr-movements)",
    contraction_revenue="The tenant's contraction MRR of the day (docs/metrics.md#mrr-movements)",
    churned_revenue="The tenant's churned MRR of the day (docs/metrics.md#mrr-movements)",
    active_customers="The tenant's customers with MRR > 0 at the end of the day (docs/metrics.md#customers)",
    new_customers="The tenant's new customers of the day (docs/metrics.md#customers)",
    reactivated_customers="The tenant's reactivated customers of the day (docs/metrics.md#customers)",
    churned_customers="The tenant's churned customers of the day (docs/metrics.md#customers)",
)

_describe(
    subscription_events,
    plan_id="The plan the event names; NULL when it names none (docs/metrics.md#segment-state)",
    billing_interval="The event's interval: week, month, quarter or year; NULL for cancellations (docs/metrics.md#segment-state)",
)

_describe(
    customer_sources,
    tenant_id="The organization of the customer (docs/metrics.md#segment-state)",
    user_id="The customer (docs/metrics.md#segment-state)",
    source="The source of the customer's first user_signup, or (none) (docs/metrics.md#segments)",
    signed_up_at="Timestamp of that user_signup (docs/metrics.md#segment-state)",
    event_id="id of that user_signup in analytics_events (docs/metrics.md#segment-state)",
)

_SEGMENT_DESCRIPTIONS = {
    "dimension": "plan, interval or source (docs/metrics.md#segments)",
    "value": "The plan_id, interval or source; (none) where there is none (docs/metrics.md#segments)",
    "new_revenue": "New MRR, in the values the customer holds after the day (docs/metrics.md#segment-movements)",
    "reactivation_revenue": "Reactivation MRR, in the values the customer holds after the day (docs/metrics.md#segment-movements)",
    "expansion_revenue": "Expansion MRR, in the values that gained (docs/metrics.md#segment-movements)",
    "contraction_revenue": "Contraction MRR, in the values that lost (docs/metrics.md#segment-movements)",
    "churned_revenue": "Churned MRR, in the values the customer held before the day (docs/metrics.md#segment-movements)",
    "transfer_in_revenue": "MRR moved into the value from another value of the same customer (docs/metrics.md#segment-movements)",
    "transfer_out_revenue": "MRR moved out of the value to another value of the same customer (docs/metrics.md#segment-movements)",
    "new_customers": "New customers who count in the value (docs/metrics.md#segment-customers)",
    "reactivated_customers": "Reactivated customers who count in the value (docs/metrics.md#segment-customers)",
    "churned_customers": "Churned customers who counted in the value (docs/metrics.md#segment-customers)",
    "transferred_in_customers": "Active customers who came to count in the value from another (docs/metrics.md#segment-customers)",
    "transferred_out_customers": "Active customers who came to count in another value (docs/metrics.md#segment-customers)",
}

_describe(
    customer_segment_days,
    tenant_id="The organization of the customer (docs/metrics.md#segment-state)",
    user_id="The customer (docs/metrics.md#segment-state)",
    day="A day (UTC) on which the customer's MRR in the value, or the value they count in, changed (docs/metrics.md#segment-state)",
    mrr="The customer's MRR in the value at the end of the day (docs/metrics.md#segments)",
    active_customers="1 when the customer counts in the value at the end of the day, else 0 (docs/metrics.md#segment-customers)",
    **_SEGMENT_DESCRIPTIONS,
)

_describe(
    tenant_segment_days,
    tenant_id="The organization (docs/metrics.md#segment-state)",
    day="A day (UTC) on which any customer's row of the value changed (docs/metrics.md#segment-state)",
    mrr="The value's MRR at the end of the day (docs/metrics.md#segments)",
    active_customers="Customers counting in the value at the end of the day (docs/metrics.md#segment-customers)",
    **_SEGMENT_DESCRIPTIONS,
)

_describe(
    segment_state_changes,
    tenant_id="A tenant whose segment state an absorb changed (docs/metrics.md#segment-state)",
    from_day="The first day it changed (docs/metrics.md#segment-state)",
    ingest_xid="Id of the absorb's transaction, set by the database (docs/metrics.md#segment-state)",
    recorded_at="When the absorb ran, UTC; rows older than a week are dropped (docs/metrics.md#segment-state)",
)

_describe(
    revenue_segments,
    id="Row key: tenant_id:period_type:period_start:dimension:value (docs/metrics.md#revenue_segments)",
    tenant_id="The organization the row belongs to; row-level security filters on it (docs/metrics.md#revenue_segments)",
    **_PERIOD_DESCRIPTIONS,
    **_SEGMENT_DESCRIPTIONS,
    mrr="The value's MRR at the end of the period's last computed day (docs/metrics.md#segments)",
    arr="The value's ARR: mrr × 12 (docs/metrics.md#segments)",
    active_customers="Customers counting in the value at the end of the period's last computed day (docs/metrics.md#segment-customers)",
    updated_at="When the pipeline last wrote the row, UTC (docs/metrics.md#revenue_segments)",
)

_describe(
    user_cohort_segments,
    id="Row key: tenant_id:cohort_month:month_number:dimension:value (docs/metrics.md#user_cohort_segments)",
    tenant_id="The organization the row belongs to; row-level security filters on it (docs/metrics.md#user_cohort_segments)",
    cohort_month=user_cohorts.c.cohort_month.comment,
    month_number=user_cohorts.c.month_number.comment,
    dimension="first_plan or source (docs/metrics.md#cohort-segments)",
    value=(
        "The plan of the user's first subscription, or the source of their first user_signup; (none) where "
        "there is none (docs/metrics.md#cohort-segments)"
    ),
    cohort_size="Users of the cohort in the value (docs/metrics.md#cohort-metrics)",
    retained_users="Those users with activity in the month; all of them in month 0 (docs/metrics.md#cohort-metrics)",
    retention_rate=(
        "retained_users / cohort_size, a fraction (1 = 100 %) rounded to 4 decimals (docs/metrics.md#cohort-segments)"
    ),
    revenue="Those users' payment_completed amounts in the month (docs/metrics.md#cohort-metrics)",
    ltv="Cumulative revenue of months 0..month_number per user of the cohort in the value (docs/metrics.md#cohort-metrics)",
    updated_at="When the pipeline last wrote the row, UTC (docs/metrics.md#user_cohort_segments)",
)

_describe(
    tournament_history,
    tenant_id="The organization the tournament belongs to (docs/metrics.md#tournament-state)",
    tournament_id="The tournament_id its events name (docs/metrics.md#tournament-membership)",
    tournament_day="The day (UTC) the tournament belongs to; NULL while only payments name it (docs/metrics.md#tournament-membership)",
    previous_tournament_day="The day it belonged to before a late event moved it (docs/metrics.md#tournament-state)",
    created_event_at="Timestamp of its earliest tournament_created event (docs/metrics.md#tournament-membership)",
    first_activity_at="Timestamp of its earliest other tournament event (docs/metrics.md#tournament-membership)",
    format="The format of its earliest tournament_created event (docs/metrics.md#most-popular-format)",
    started_at="Timestamp of its earliest tournament_started event (docs/metrics.md#tournament-duration)",
    completed_at="Timestamp of its earliest tournament_completed event (docs/metrics.md#tournament-duration)",
    completion_duration_minutes="Its duration in minutes; NULL when it has none (docs/metrics.md#tournament-duration)",
    player_ids="Users with a player_registered event for it (docs/metrics.md#tournament-state)",
    payment_amounts="Amount by event id of the payment_completed events naming it (docs/metrics.md#tournament-state)",
    player_count="Number of player_ids (docs/metrics.md#tournament-state)",
    revenue="Sum of payment_amounts (docs/metrics.md#tournament-state)",
    updated_at="When the absorb last changed the row, UTC (docs/metrics.md#tournament-state)",
)

_describe(
    user_signups,
    tenant_id="The organization of the user (docs/metrics.md#cohort-state)",
    user_id="The user (docs/metrics.md#cohort-state)",
    signed_up_at="Timestamp of the user's first user_signup (docs/metrics.md#cohort-metrics)",
    cohort_month="First day of the calendar month of signed_up_at: the user's cohort (docs/metrics.md#cohort-metrics)",
    updated_at="When the absorb last changed the row, UTC (docs/metrics.md#cohort-state)",
)

_describe(
    user_activity_months,
    tenant_id="The organization of the user (docs/metrics.md#cohort-state)",
    user_id="The user (docs/metrics.md#cohort-state)",
    activity_month="First day of a calendar month with any valid event of the user (docs/metrics.md#cohort-metrics)",
    payment_amounts="Amount by event id of the user's payment_completed events of the month (docs/metrics.md#cohort-state)",
    revenue="Sum of payment_amounts (docs/metrics.md#cohort-state)",
)


_describe(
    revenue_kpis,
    tenant_id="The organization the row belongs to; row-level security filters on it (docs/metrics.md#kpis)",
    # The columns the view passes through from revenue_aggregates mean what they mean there.
    **{
        name: revenue_aggregates.c[name].comment
        for name in ("period_type", "period_start", "period_end", "mrr", "arr", *CUSTOMER_COUNTS)
    },
    opening_mrr="MRR at the end of the day before the period, from the MRR bridge (docs/metrics.md#opening-mrr)",
    opening_customers="Active customers at the end of the day before the period (docs/metrics.md#opening-customers)",
    arpa="Average revenue per account: mrr / active_customers; NULL without customers (docs/metrics.md#arpa)",
    logo_churn_rate="churned_customers / opening_customers, a fraction; NULL when 0 opened (docs/metrics.md#logo-churn-rate)",
    gross_mrr_churn_rate="(churned + contraction) / opening MRR, a fraction (docs/metrics.md#gross-mrr-churn-rate)",
    net_mrr_churn_rate="(churned + contraction − expansion − reactivation) / opening MRR (docs/metrics.md#net-mrr-churn-rate)",
    grr="Gross revenue retention: (opening MRR − churned − contraction) / opening MRR (docs/metrics.md#grr)",
    nrr="Net revenue retention: (opening MRR + expansion − contraction − churned) / opening MRR (docs/metrics.md#nrr)",
    quick_ratio="(new + expansion + reactivation) / (churned + contraction); NULL when nothing was lost (docs/metrics.md#quick-ratio)",
    ttm_nrr="Share of the MRR of twelve months before kept by those customers now; months only (docs/metrics.md#ttm-nrr)",
    ttm_grr="As ttm_nrr with each customer's MRR capped at their MRR then; months only (docs/metrics.md#ttm-grr)",
)
