"""Revenue: the subscription and payment histories (derived state) and `revenue_aggregates`
(docs/metrics.md#revenue_aggregates). The SQL is in sql/."""


import datetime as dt
from collections.abc import Callable

import dagster as dg
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..aggregation import state
from ..aggregation.assets import AGGREGATES_GROUP, KINDS, OWNERS, aggregate_asset, state_asset
from ..aggregation.bounds import COUNT_BOUND, MONEY_BOUND, ComputedRows
from ..aggregation.declarations import DerivedState
from ..aggregation.freshness import HOURLY_SCHEDULE
from ..aggregation.partitions import daily_partitions
from ..aggregation.periods import PERIOD_TYPES, TOUCHED_PERIODS_SQL
from ..aggregation.runs import Aggregate, collect_window, empty_day_partitions_sql, run_aggregate
from ..aggregation.schedules import HOURLY
from ..core import schema
from ..core.cache_versions import CacheInvalidation
from ..core.resources import AnalyticsDatabase
from ..core.sql import sql_loader
from ..core.table_metadata import table_metadata
from .checks import CHECK_SPECS, RULE_CHECKS, malformed_revenue_events, prepare_checks

load = sql_loader(__package__)

AGGREGATE = "revenue_aggregates"
# How old the aggregate may get (docs/operations.md#freshness).
FRESHNESS = HOURLY_SCHEDULE

SUBSCRIPTION_EVENT_TYPES = ("subscription_started", "subscription_changed", "subscription_cancelled")
PAYMENT_EVENT_TYPES = ("payment_completed", "payment_failed", "payment_refunded")

SUBSCRIPTION_HISTORY = DerivedState(
    "subscription_history", "subscription_events", SUBSCRIPTION_EVENT_TYPES, load("reconcile_subscription_history")
)
PAYMENT_HISTORY = DerivedState(
    "payment_history", "payment_events", PAYMENT_EVENT_TYPES, load("reconcile_payment_history")
)
# Each customer's acquisition source, for the segments (docs/metrics.md#segment-state).
CUSTOMER_SOURCES = DerivedState(
    "customer_sources", "customer_sources", ("user_signup",), load("segments/reconcile_customer_sources")
)


def _sql(name: str, rows: str = "") -> str:
    return load(name).replace("{touched_periods}", TOUCHED_PERIODS_SQL).replace("{rows}", rows)


def _in_list(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


# --- derived state ------------------------------------------------------------------------------


# Each history's statement inserting its valid events from revenue_window_events.
_ABSORB_STATEMENTS = {
    SUBSCRIPTION_HISTORY.name: "absorb_subscription_events",
    PAYMENT_HISTORY.name: "absorb_payment_events",
    CUSTOMER_SOURCES.name: "segments/absorb_customer_sources",
}

# What the segment state's refresh reads of an absorb that did not read the state concerned: no
# customer whose MRR state changed, no signup.
_NOTHING_CHANGED = {
    "revenue_changed_customers": "tenant_id text, user_id text, from_day date",
    "revenue_window_signups": (
        "tenant_id text, user_id text, event_id text, signed_up_at timestamp, source text, source_changed boolean"
    ),
}


def absorb_histories(conn: Connection, *histories: DerivedState) -> dict[str, int]:
    """Bring the given histories up to date with analytics_events in the caller's transaction:
    one read of the raw events committed since the oldest of their snapshots (one snapshot for
    all, analytics_pipeline/aggregation/state.py), from which each copies the valid events it has not seen and
    the malformed ones go to malformed_events. The subscription history's absorb also maintains
    the MRR state, and it and the source state's the segment state. Returns the rows each history
    gained, by state name."""
    windows = state.begin_absorbs(conn, *(h.name for h in histories))
    committed = state.read(windows)
    event_types = [t for h in histories for t in h.event_types]
    collect_window(
        conn, "revenue_window_events", committed.render(load("window_events")),
        {**committed.params, "event_types": event_types},
    )
    conn.execute(sa.text(load("absorb_malformed")))
    added = {}
    collected = set()
    for window in windows:
        if window.state_name == CUSTOMER_SOURCES.name:
            # Before the absorb: which customers' source it changes.
            collect_window(
                conn, "revenue_window_signups", window.render(load("segments/window_signups")), window.unseen_params
            )
            collected.add("revenue_window_signups")
        statement = window.render(load(_ABSORB_STATEMENTS[window.state_name]))
        added[window.state_name] = conn.execute(sa.text(statement), window.unseen_params).rowcount
        if window.state_name == SUBSCRIPTION_HISTORY.name:
            collect_window(
                conn, "revenue_changed_customers", window.render(load("changed_customers")), window.unseen_params
            )
            collected.add("revenue_changed_customers")
            refresh_mrr_state(conn)
        state.finish_absorb(conn, window)
    if collected:
        for table, columns in _NOTHING_CHANGED.items():
            if table not in collected:
                conn.execute(sa.text(f"DROP TABLE IF EXISTS pg_temp.{table}"))
                conn.execute(sa.text(f"CREATE TEMP TABLE {table} ({columns}) ON COMMIT DROP"))
        refresh_segment_state(conn)
    return added


def refresh_mrr_state(conn: Connection) -> None:
    """Recompute the MRR state (customer_mrr_days, tenant_mrr_days) of the customers in
    revenue_changed_customers from each one's first changed day on (docs/metrics.md#mrr-state)."""
    # A temporary table has no statistics until analyzed; a few changed customers should be
    # looked up by index, a backfill's all of them hashed.
    conn.execute(sa.text("ANALYZE revenue_changed_customers"))
    for statement in ("delete_customer_mrr_days", "insert_customer_mrr_days",
                      "delete_tenant_mrr_days", "insert_tenant_mrr_days"):
        conn.execute(sa.text(load(statement)))


def refresh_segment_state(conn: Connection) -> None:
    """Recompute the segment state (customer_segment_days, tenant_segment_days) of the customers
    whose MRR state or source the absorb changed, from each one's first changed day on, and stamp
    the tenants changed for the new-events sensor (docs/metrics.md#segment-state)."""
    collect_window(conn, "revenue_segment_changed_customers", load("segments/changed_customers"), {})
    conn.execute(sa.text("ANALYZE revenue_segment_changed_customers"))
    for statement in ("delete_customer_segment_days", "insert_customer_segment_days",
                      "delete_tenant_segment_days", "insert_tenant_segment_days",
                      "record_changes", "prune_changes"):
        conn.execute(sa.text(load(f"segments/{statement}")))


def absorb_subscription_events(conn: Connection) -> int:
    """Bring the subscription history and the MRR state up to date with analytics_events; returns
    rows added."""
    return absorb_histories(conn, SUBSCRIPTION_HISTORY)[SUBSCRIPTION_HISTORY.name]


def absorb_payment_events(conn: Connection) -> int:
    """Bring the payment history up to date with analytics_events; returns rows added."""
    return absorb_histories(conn, PAYMENT_HISTORY)[PAYMENT_HISTORY.name]


def history_counts(added: int) -> dict[str, int]:
    """What a history's absorb reports (analytics_pipeline/aggregation/metadata.py)."""
    return {"events_added": added}


def absorb_customer_sources(conn: Connection) -> int:
    """Bring the customers' sources (and their segment state) up to date with analytics_events;
    returns the customers added or moved to an earlier signup."""
    return absorb_histories(conn, CUSTOMER_SOURCES)[CUSTOMER_SOURCES.name]


def absorb_both_histories(conn: Connection) -> dict[str, dict[str, int]]:
    """Both histories, and the customers' sources, from one read of the raw events, as
    revenue_aggregates' runs absorb them; their counts by state name."""
    added = absorb_histories(conn, SUBSCRIPTION_HISTORY, PAYMENT_HISTORY, CUSTOMER_SOURCES)
    return {
        name: ({"customers_added_or_moved": rows} if name == CUSTOMER_SOURCES.name else history_counts(rows))
        for name, rows in added.items()
    }


@state_asset(schema.subscription_events)
def subscription_history(context: dg.AssetExecutionContext, database: AnalyticsDatabase) -> dg.MaterializeResult:
    """Every valid subscription start, price change and cancellation, with its monthly value
    (docs/metrics.md#monthly-value): the history MRR is computed from.

    Raw events are purged after 13 months but a subscription can be older, so this compact copy
    is kept for good. It absorbs newly committed events (docs/ingestion.md); revenue_aggregates also
    brings it up to date at the start of each of its runs. The same absorb maintains the MRR state
    (customer_mrr_days, tenant_mrr_days; docs/metrics.md#mrr-state) and the segment state
    (customer_segment_days, tenant_segment_days; docs/metrics.md#segment-state) for the customers
    with new events, from the first day those events change.
    """
    with database.transaction() as conn:
        added = absorb_subscription_events(conn)
        total = conn.execute(sa.text("SELECT count(*) FROM subscription_events")).scalar_one()
    return dg.MaterializeResult(metadata={**history_counts(added), "dagster/row_count": total})


@state_asset(schema.payment_events)
def payment_history(context: dg.AssetExecutionContext, database: AnalyticsDatabase) -> dg.MaterializeResult:
    """Every valid completed payment, failed payment and refund: its tenant, type, time and
    amount, the history the payment and refund columns of revenue_aggregates are computed from
    (docs/metrics.md#payment-history).

    Kept for good after raw events are purged, so any day can be recomputed at any time. It
    absorbs newly committed events (docs/ingestion.md); revenue_aggregates also brings it up to date
    at the start of each of its runs.
    """
    with database.transaction() as conn:
        added = absorb_payment_events(conn)
        total = conn.execute(sa.text("SELECT count(*) FROM payment_events")).scalar_one()
    return dg.MaterializeResult(metadata={**history_counts(added), "dagster/row_count": total})


@state_asset(schema.customer_sources)
def customer_sources(context: dg.AssetExecutionContext, database: AnalyticsDatabase) -> dg.MaterializeResult:
    """Each customer's acquisition source: the `source` of their first user_signup, or `(none)`
    (docs/metrics.md#segments), which revenue_segments groups MRR and customers by.

    Kept for good after raw events are purged. It absorbs newly committed events
    (docs/ingestion.md); revenue_aggregates also brings it up to date at the start of each of its
    runs. A customer whose source changes (their first signup arrives late) has their segment
    state recomputed from their first subscription day (docs/metrics.md#segment-state).
    """
    with database.transaction() as conn:
        added = absorb_customer_sources(conn)
        total = conn.execute(sa.text("SELECT count(*) FROM customer_sources")).scalar_one()
    return dg.MaterializeResult(metadata={"customers_added_or_moved": added, "dagster/row_count": total})


# --- the aggregate ------------------------------------------------------------------------------


def compute_revenue_rows(conn: Connection, params: dict) -> None:
    """The day rows of the window and the rows of every period containing one of them, from the
    MRR state (the window's days and each tenant's opening MRR) and the payment history, into
    revenue_day_rows and revenue_period_rows."""
    conn.execute(sa.text(_sql("mrr_days")), params)
    conn.execute(sa.text(_sql("opening_mrr")), params)
    conn.execute(sa.text(_sql("payment_days")), params)
    # Day rows first: the longer periods are computed from them.
    conn.execute(sa.text(_sql("day_rows")), params)
    conn.execute(sa.text(_sql("period_rows")), params)
    # Without statistics the planner takes the temporary table for a few rows and joins the
    # customers' MRR spans to its months by nested loops: 20 s instead of 0.2 s on a backfill.
    conn.execute(sa.text("ANALYZE revenue_period_rows"))
    conn.execute(sa.text(_sql("ttm_rows")), params)


_REVENUE_VALUES = (
    ("mrr", "r.mrr", MONEY_BOUND),
    ("arr", "r.mrr * 12", MONEY_BOUND),
    *(
        (column, f"r.{column}", MONEY_BOUND)
        for column in (
            "new_revenue", "reactivation_revenue", "expansion_revenue", "contraction_revenue",
            "churned_revenue", "total_revenue", "refund_amount",
            "ttm_cohort_mrr_before", "ttm_cohort_mrr", "ttm_cohort_retained_mrr",
        )
    ),
    *(
        (column, f"r.{column}", COUNT_BOUND)
        for column in (
            "payment_count", "payment_success_count", "refund_count",
            "active_customers", "new_customers", "reactivated_customers", "churned_customers",
        )
    ),
)
REVENUE_ROWS = tuple(
    ComputedRows(table, "r.period_type || ' ' || r.period_start", _REVENUE_VALUES)
    for table in ("revenue_day_rows", "revenue_period_rows")
)


def write_window(
    conn: Connection, params: dict, table: str, sql: Callable[[str, str], str], day_rows: str, period_rows: str
) -> dict[str, object]:
    """Replace the rows of `table` of the window's days and of every period containing one of
    them with the computed ones (`day_rows`, `period_rows`), by the statements `sql(name, rows)`
    delete_stale and upsert_rows; returns the write's metadata."""
    conn.execute(sa.text(sql("delete_stale", day_rows)), {**params, "days": True})
    conn.execute(sa.text(sql("upsert_rows", day_rows)), params)
    conn.execute(sa.text(sql("delete_stale", period_rows)), {**params, "days": False})
    conn.execute(sa.text(sql("upsert_rows", period_rows)), params)
    rows_by_type = dict(
        conn.execute(
            sa.text(
                f"SELECT period_type, count(*) FROM ({TOUCHED_PERIODS_SQL}) AS t "
                f"JOIN {table} AS r USING (period_type, period_start) GROUP BY period_type"
            ),
            params,
        ).all()
    )
    # Grouped by hashing: count(DISTINCT) would sort a backfill's million rows.
    tenants = conn.execute(sa.text(f"SELECT count(*) FROM (SELECT DISTINCT tenant_id FROM {day_rows}) AS t")).scalar_one()
    return {
        "rows_written": sum(rows_by_type.values()),
        "tenants": tenants,
        **{f"rows_{p}": rows_by_type.get(p, 0) for p in PERIOD_TYPES},
    }


def write_revenue_aggregates(conn: Connection, params: dict) -> dict[str, object]:
    """Replace the day rows of the window and every period containing one of them with the
    computed ones."""
    return write_window(conn, params, AGGREGATE, _sql, "revenue_day_rows", "revenue_period_rows")


REVENUE_AGGREGATE = Aggregate(
    name=AGGREGATE,
    absorbs=(absorb_both_histories,),
    compute=compute_revenue_rows,
    computed=REVENUE_ROWS,
    write=write_revenue_aggregates,
    table=schema.revenue_aggregates,
    window_rows_sql=(
        f"FROM revenue_aggregates AS r WHERE (r.period_type, r.period_start) IN "
        f"(SELECT period_type, period_start FROM ({TOUCHED_PERIODS_SQL}) AS t)"
    ),
    empty_partitions_sql=empty_day_partitions_sql("revenue_aggregates"),
    malformed=malformed_revenue_events,
    checks=RULE_CHECKS,
    prepare_checks=prepare_checks,
    describe_window=lambda start, end: f"{start}..{end}",
    inputs="subscriptions, payments or refunds",
)


@aggregate_asset(
    schema.revenue_aggregates,
    partitions_def=daily_partitions,
    deps=[subscription_history, payment_history],
    check_specs=CHECK_SPECS,
    freshness=FRESHNESS,
    tags=HOURLY,
)
def revenue_aggregates(
    context: dg.AssetExecutionContext, database: AnalyticsDatabase, cache: CacheInvalidation
) -> dg.MaterializeResult:
    """Revenue per tenant and period: MRR and ARR, the MRR movements (new, reactivation,
    expansion, contraction, churn), the customer counts (active, new, reactivated, churned),
    gross payments, payment attempts and refunds. The view revenue_kpis derives the SaaS KPIs
    (ARPA, churn rates, GRR, NRR, quick ratio) from these rows (docs/metrics.md#kpis).

    One row per tenant and day, ISO week, month, quarter and year that has MRR > 0, a movement,
    or a payment or refund. A run over a range of day partitions brings the subscription and
    payment histories up to date, then recomputes those days and every period containing one of
    them from the histories, inside one transaction: any day can be recomputed at any time,
    whatever raw events have been purged. Definitions: docs/metrics.md.
    """
    return run_aggregate(context, database, cache, REVENUE_AGGREGATE)


def touched_revenue_days(conn: Connection, committed: state.Committed, before: dt.date) -> set[dt.date]:
    """Days before `before` whose revenue rows change because of the `committed` events. A
    subscription event changes MRR from its day to today, so it marks every day from there on."""
    found = conn.execute(
        sa.text(
            f"""
            SELECT e."timestamp"::date AS day, bool_or(e.event_type LIKE 'subscription\\_%') AS moves_mrr
            FROM analytics_events AS e
            WHERE {committed.sql("e")} AND e."timestamp" < :before
              AND e.event_type IN ({_in_list(PAYMENT_EVENT_TYPES + SUBSCRIPTION_EVENT_TYPES)})
            GROUP BY 1
            """
        ),
        {**committed.params, "before": before},
    ).all()
    days = {day for day, _ in found}
    earliest_mrr_change = min((day for day, moves in found if moves), default=None)
    if earliest_mrr_change is not None:
        days |= {earliest_mrr_change + dt.timedelta(days=n) for n in range((before - earliest_mrr_change).days)}
    return days


revenue_kpis = dg.AssetSpec(
    "revenue_kpis",
    description=(
        "The SaaS KPIs of every revenue_aggregates row (docs/metrics.md#kpis): ARPA, logo churn rate, "
        "gross and net MRR churn rates, GRR, NRR, quick ratio and, on month rows, trailing-twelve-month "
        "NRR and GRR. A view, computed when read, under the reader's row-level security; rates and ratios "
        "are fractions, NULL where their denominator is 0."
    ),
    deps=[revenue_aggregates, subscription_history],
    group_name=AGGREGATES_GROUP,
    kinds=set(KINDS),
    owners=list(OWNERS),
    metadata=table_metadata(schema.revenue_kpis),
)
