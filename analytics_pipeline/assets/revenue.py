"""Revenue: the subscription history and `revenue_aggregates` (docs/metrics.md#revenue_aggregates)."""


import datetime as dt
import time
from collections import defaultdict

import dagster as dg
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .. import state
from ..api.versions import advance_versions, tenants_in_window
from ..partitions import daily_partitions
from ..resources import AnalyticsDatabase
from ..schema import revenue_aggregates as revenue_aggregates_table
from .aggregate_runs import (
    AggregateRunConfig,
    column_schema,
    log_kept_rows,
    malformed_check_result,
    malformed_metadata,
    recompute_start,
    rule_check_result,
    tune_for_aggregation,
)
from .periods import PERIOD_TYPES, TOUCHED_PERIODS_SQL, lock_aggregate, window_dates
from .sources import analytics_events
from .sql import load

SUBSCRIPTION_HISTORY = "subscription_history"
state.REGISTERED_STATES.append(SUBSCRIPTION_HISTORY)

MRR_BRIDGE = "mrr_bridge"
NON_NEGATIVE = "non_negative"
PAYMENT_SUCCESS_WITHIN_ATTEMPTS = "payment_success_within_attempts"
ARR_IS_TWELVE_TIMES_MRR = "arr_is_twelve_times_mrr"
PERIODS_SUM_THEIR_DAYS = "periods_sum_their_days"
NO_MALFORMED_EVENTS = "no_malformed_events"


def _sql(name: str, rows: str = "") -> str:
    return load(f"revenue/{name}").replace("{touched_periods}", TOUCHED_PERIODS_SQL).replace("{rows}", rows)


def absorb_subscription_events(conn: Connection) -> int:
    """Bring the subscription history up to date with analytics_events; returns rows added."""
    window = state.begin_absorb(conn, SUBSCRIPTION_HISTORY)
    added = conn.execute(
        sa.text(_sql("absorb_subscription_events")),
        {"since": window.since or dt.datetime.min, "through": window.through},
    ).rowcount
    state.finish_absorb(conn, window)
    return added


@dg.asset(
    deps=[analytics_events],
    group_name="state",
    kinds={"postgres"},
    owners=["team:analytics"],
    pool="analytics_db",
    metadata={"dagster/table_name": "public.subscription_events"},
)
def subscription_history(context: dg.AssetExecutionContext, database: AnalyticsDatabase) -> dg.MaterializeResult:
    """Every valid subscription start, price change and cancellation, with its monthly value
    (docs/metrics.md#monthly-value): the history MRR is computed from.

    Raw events are purged after 13 months but a subscription can be older, so this compact copy
    is kept for good. It absorbs new events incrementally by `created_at`; revenue_aggregates also
    brings it up to date at the start of each of its runs.
    """
    with database.transaction() as conn:
        added = absorb_subscription_events(conn)
        total = conn.execute(sa.text("SELECT count(*) FROM subscription_events")).scalar_one()
    return dg.MaterializeResult(metadata={"events_added": added, "dagster/row_count": total})


REVENUE_CHECKS = [
    dg.AssetCheckSpec(MRR_BRIDGE, asset="revenue_aggregates",
                      description="MRR at the end minus MRR before the period equals new + reactivation + expansion - contraction - churned."),
    dg.AssetCheckSpec(NON_NEGATIVE, asset="revenue_aggregates", description="No negative amount or count."),
    dg.AssetCheckSpec(PAYMENT_SUCCESS_WITHIN_ATTEMPTS, asset="revenue_aggregates",
                      description="Successful payments never exceed payment attempts."),
    dg.AssetCheckSpec(ARR_IS_TWELVE_TIMES_MRR, asset="revenue_aggregates", description="arr = mrr * 12."),
    dg.AssetCheckSpec(PERIODS_SUM_THEIR_DAYS, asset="revenue_aggregates",
                      description="Week, month, quarter and year rows equal the sums of their day rows; mrr is their last day's."),
    dg.AssetCheckSpec(NO_MALFORMED_EVENTS, asset="revenue_aggregates",
                      description="Malformed payment and subscription events in the window (skipped; WARN with counts by tenant and type)."),
]


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[analytics_events, subscription_history],
    group_name="aggregates",
    kinds={"postgres"},
    owners=["team:analytics"],
    pool="analytics_db",
    check_specs=REVENUE_CHECKS,
    metadata={
        "dagster/table_name": "public.revenue_aggregates",
        "dagster/column_schema": column_schema(revenue_aggregates_table),
    },
)
def revenue_aggregates(
    context: dg.AssetExecutionContext, config: AggregateRunConfig, database: AnalyticsDatabase
) -> dg.MaterializeResult:
    """Revenue per tenant and period: MRR and ARR, the MRR movements (new, reactivation,
    expansion, contraction, churn), gross payments, payment attempts and refunds.

    One row per tenant and day, ISO week, month, quarter and year that has MRR > 0, a movement,
    or a payment or refund. A run over a range of day partitions recomputes those days and every
    period containing one of them, inside one transaction. Definitions: docs/metrics.md.
    """
    started = time.monotonic()
    requested_start, window_end = window_dates(context)
    window_start = recompute_start(requested_start, window_end, config.recompute_before_retention_cutoff)
    if window_start > requested_start:
        log_kept_rows(context, f"days {requested_start}..{window_start - dt.timedelta(days=1)}")
    params = {"window_start": window_start, "window_end": max(window_start, window_end)}

    with database.transaction() as conn:
        lock_aggregate(conn, "revenue_aggregates")
        tune_for_aggregation(conn)
        absorbed = absorb_subscription_events(conn)
        conn.execute(sa.text(_sql("mrr_days")), params)
        conn.execute(sa.text(_sql("event_counts")), params)
        # Day rows first: the longer periods are computed from the stored day rows.
        conn.execute(sa.text(_sql("day_rows")), params)
        conn.execute(sa.text(_sql("delete_stale", "revenue_day_rows")), {**params, "days": True})
        conn.execute(sa.text(_sql("upsert_rows", "revenue_day_rows")), params)
        conn.execute(sa.text(_sql("period_rows")), params)
        conn.execute(sa.text(_sql("delete_stale", "revenue_period_rows")), {**params, "days": False})
        conn.execute(sa.text(_sql("upsert_rows", "revenue_period_rows")), params)
        rows_by_type = dict(
            conn.execute(
                sa.text(
                    f"SELECT period_type, count(*) FROM ({TOUCHED_PERIODS_SQL}) AS t "
                    "JOIN revenue_aggregates AS r USING (period_type, period_start) GROUP BY period_type"
                ),
                params,
            ).all()
        )
        tenants = conn.execute(
            sa.text("SELECT count(DISTINCT tenant_id) FROM revenue_day_rows")
        ).scalar_one()
        malformed = conn.execute(
            sa.text(
                "SELECT tenant_id, event_type, problem, sum(events)::int FROM revenue_event_counts "
                "WHERE problem IS NOT NULL GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
            )
        ).all()
        violations = conn.execute(sa.text(_sql("checks")), params).all()

    advance_versions(
        "revenue_aggregates",
        tenants_in_window(database, "revenue_aggregates", params["window_start"], params["window_end"]),
        context.log,
    )
    if absorbed:
        context.log_event(
            dg.AssetMaterialization(SUBSCRIPTION_HISTORY, metadata={"events_added": absorbed})
        )
    return dg.MaterializeResult(
        metadata={
            "window": f"{params['window_start']}..{params['window_end']}",
            "tenants": tenants,
            **{f"rows_{p}": rows_by_type.get(p, 0) for p in PERIOD_TYPES},
            "subscription_events_absorbed": absorbed,
            **malformed_metadata(malformed),
            "duration_seconds": round(time.monotonic() - started, 3),
        },
        check_results=_check_results(violations, malformed),
    )


def _check_results(violations, malformed) -> list[dg.AssetCheckResult]:
    by_check: dict[str, list[str]] = defaultdict(list)
    for check_name, tenant_id, period_type, period_start in violations:
        by_check[check_name].append(f"{tenant_id} {period_type} {period_start}")
    rules = (MRR_BRIDGE, NON_NEGATIVE, PAYMENT_SUCCESS_WITHIN_ATTEMPTS, ARR_IS_TWELVE_TIMES_MRR,
             PERIODS_SUM_THEIR_DAYS)
    return [
        *(rule_check_result(name, by_check[name]) for name in rules),
        malformed_check_result(NO_MALFORMED_EVENTS, malformed),
    ]


defs = dg.Definitions(assets=[subscription_history, revenue_aggregates])
