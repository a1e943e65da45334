"""revenue_segments: MRR, movements and customers by plan, billing interval and source (#22).

The segment state (docs/metrics.md#segment-state): subscription_events gains each event's plan_id
and billing_interval, filled here from the raw events still kept (an event already purged keeps
NULL, which counts under `(none)`); customer_sources keeps each customer's first user_signup and
its source, filled here from the raw signups, so that the new state's first absorb, which reads
every event once, changes nothing; customer_segment_days and tenant_segment_days are the MRR
state by dimension and value, built here for every customer of the subscription history with
the statements the absorb uses; segment_state_changes stamps which tenants' segment state each
absorb changed, for the new-events sensor.

The aggregate revenue_segments (docs/metrics.md#revenue_segments): one row per tenant, period,
dimension and value, money in NUMERIC(18,2) as revision 0010 made it for revenue_aggregates, with
its unique key and an index for the runs' deletes. The runs fill it.

Row-level security and grants as revision 0009 gives the other tables whose rows belong to a
tenant; column comments as revision 0016 puts them (analytics_pipeline/core/schema.py).

Revision ID: 0021_revenue_segments
Revises: 0020_kpi_change
"""

import sqlalchemy as sa
from alembic import op

revision = "0021_revenue_segments"
down_revision = "0020_kpi_change"
branch_labels = None
depends_on = None

TENANT_MATCHES = "tenant_id = current_setting('app.tenant_id', true)"
NEW_TABLES = ("customer_sources", "customer_segment_days", "tenant_segment_days", "segment_state_changes",
              "revenue_segments")
MOVEMENTS = (
    "new_revenue", "reactivation_revenue", "expansion_revenue", "contraction_revenue", "churned_revenue",
    "transfer_in_revenue", "transfer_out_revenue",
)
CUSTOMER_COUNTS = (
    "active_customers", "new_customers", "reactivated_customers", "churned_customers",
    "transferred_in_customers", "transferred_out_customers",
)
MONEY = sa.Numeric(18, 2)

# As analytics_pipeline/core/schema.py has them at this revision.
_SEGMENT = {
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
COMMENTS = {
    "subscription_events": {
        "plan_id": "The plan the event names; NULL when it names none (docs/metrics.md#segment-state)",
        "billing_interval": "The event's interval: week, month, quarter or year; NULL for cancellations (docs/metrics.md#segment-state)",
    },
    "customer_sources": {
        "tenant_id": "The organization of the customer (docs/metrics.md#segment-state)",
        "user_id": "The customer (docs/metrics.md#segment-state)",
        "source": "The source of the customer's first user_signup, or (none) (docs/metrics.md#segments)",
        "signed_up_at": "Timestamp of that user_signup (docs/metrics.md#segment-state)",
        "event_id": "id of that user_signup in analytics_events (docs/metrics.md#segment-state)",
    },
    "customer_segment_days": {
        "tenant_id": "The organization of the customer (docs/metrics.md#segment-state)",
        "user_id": "The customer (docs/metrics.md#segment-state)",
        "day": "A day (UTC) on which the customer's MRR in the value, or the value they count in, changed (docs/metrics.md#segment-state)",
        "mrr": "The customer's MRR in the value at the end of the day (docs/metrics.md#segments)",
        "active_customers": "1 when the customer counts in the value at the end of the day, else 0 (docs/metrics.md#segment-customers)",
        **_SEGMENT,
    },
    "tenant_segment_days": {
        "tenant_id": "The organization (docs/metrics.md#segment-state)",
        "day": "A day (UTC) on which any customer's row of the value changed (docs/metrics.md#segment-state)",
        "mrr": "The value's MRR at the end of the day (docs/metrics.md#segments)",
        "active_customers": "Customers counting in the value at the end of the day (docs/metrics.md#segment-customers)",
        **_SEGMENT,
    },
    "segment_state_changes": {
        "tenant_id": "A tenant whose segment state an absorb changed (docs/metrics.md#segment-state)",
        "from_day": "The first day it changed (docs/metrics.md#segment-state)",
        "ingest_xid": "Id of the absorb's transaction, set by the database (docs/metrics.md#segment-state)",
        "recorded_at": "When the absorb ran, UTC; rows older than a week are dropped (docs/metrics.md#segment-state)",
    },
    "revenue_segments": {
        "id": "Row key: tenant_id:period_type:period_start:dimension:value (docs/metrics.md#revenue_segments)",
        "tenant_id": "The organization the row belongs to; row-level security filters on it (docs/metrics.md#revenue_segments)",
        "period_start": "First day of the period (docs/metrics.md#periods)",
        "period_end": "Last day of the period, inclusive, also while it is running (docs/metrics.md#periods)",
        "period_type": "day, week (ISO), month, quarter or year (docs/metrics.md#periods)",
        **_SEGMENT,
        "mrr": "The value's MRR at the end of the period's last computed day (docs/metrics.md#segments)",
        "arr": "The value's ARR: mrr × 12 (docs/metrics.md#segments)",
        "active_customers": "Customers counting in the value at the end of the period's last computed day (docs/metrics.md#segment-customers)",
        "updated_at": "When the pipeline last wrote the row, UTC (docs/metrics.md#revenue_segments)",
    },
}

_NOW = sa.text("timezone('utc', now())")

# The plan and interval of the subscription events whose raw event is still kept.
_FILL_SUBSCRIPTION_EVENTS = """
UPDATE subscription_events AS s
SET plan_id = e.event_data ->> 'plan_id',
    billing_interval = e.event_data ->> 'interval'
FROM analytics_events AS e
WHERE e.id = s.event_id
"""

# Each customer's first valid user_signup (valid: malformed_events does not hold it), as
# analytics_pipeline/revenue/sql/segments/window_signups.sql picks it at this revision.
_FILL_CUSTOMER_SOURCES = """
INSERT INTO customer_sources (tenant_id, user_id, source, signed_up_at, event_id)
SELECT DISTINCT ON (e.tenant_id, e.user_id)
    e.tenant_id, e.user_id,
    CASE WHEN jsonb_typeof(e.event_data -> 'source') = 'string'
              AND length(e.event_data ->> 'source') BETWEEN 1 AND 255
         THEN e.event_data ->> 'source' ELSE '(none)' END,
    e."timestamp", e.id
FROM analytics_events AS e
WHERE e.event_type = 'user_signup'
  AND analytics_event_problem(e.event_type, e.event_data, e.user_id, e."timestamp", e.created_at) IS NULL
ORDER BY e.tenant_id, e.user_id, e."timestamp", e.id
"""

# Every customer of the subscription history from their first event, then
# analytics_pipeline/revenue/sql/segments/insert_{customer,tenant}_segment_days.sql as of this revision.
_ALL_CUSTOMERS = """
CREATE TEMP TABLE revenue_segment_changed_customers ON COMMIT DROP AS
SELECT tenant_id, user_id, min(occurred_at)::date AS from_day
FROM subscription_events
GROUP BY tenant_id, user_id
"""

_BUILD_STATEMENTS = (
    r"""
-- The segment state of each changed customer (revenue_segment_changed_customers) from their first
-- changed day on: per dimension, value and day on which the customer's MRR in the value, or the
-- value they count in, changed, their MRR in it at the end of the day, the day's movements and
-- transfers attributed to it, and the customer flows. Computed from the customer's whole
-- subscription history, as their MRR state is (insert_customer_mrr_days.sql), so that summed over
-- the values of a dimension every movement is the customer's. Definitions: docs/metrics.md#segments,
-- docs/metrics.md#segment-movements (the plan-change convention), docs/metrics.md#segment-customers,
-- docs/metrics.md#segment-state.
INSERT INTO customer_segment_days (
    tenant_id, user_id, dimension, value, day, mrr,
    new_revenue, reactivation_revenue, expansion_revenue, contraction_revenue, churned_revenue,
    transfer_in_revenue, transfer_out_revenue,
    active_customers, new_customers, reactivated_customers, churned_customers,
    transferred_in_customers, transferred_out_customers
)
WITH segmented AS (
    -- Each start or cancellation opens a segment of the subscription's life (as for the MRR state).
    SELECT
        s.tenant_id, s.user_id, s.subscription_id, s.occurred_at, s.event_id, s.event_type, s.monthly_value,
        s.plan_id, s.billing_interval,
        count(*) FILTER (WHERE s.event_type <> 'subscription_changed') OVER (
            PARTITION BY s.tenant_id, s.user_id, s.subscription_id ORDER BY s.occurred_at, s.event_id
        ) AS segment
    FROM subscription_events AS s
    JOIN revenue_segment_changed_customers AS c ON c.tenant_id = s.tenant_id AND c.user_id = s.user_id
),
valued AS (
    -- The subscription's value as for the MRR state; its plan and interval are the latest named in
    -- the segment (a change without plan_id keeps the plan).
    SELECT
        tenant_id, user_id, subscription_id, occurred_at, event_id,
        CASE WHEN first_value(event_type) OVER w = 'subscription_started' THEN monthly_value ELSE 0 END
            AS value_after,
        array_agg(plan_id) FILTER (WHERE plan_id IS NOT NULL) OVER w AS plans,
        array_agg(billing_interval) FILTER (WHERE billing_interval IS NOT NULL) OVER w AS intervals
    FROM segmented
    WINDOW w AS (PARTITION BY tenant_id, user_id, subscription_id, segment ORDER BY occurred_at, event_id)
),
subscription_days AS (
    -- The subscription's value, plan and interval at the end of each day on which it had events.
    SELECT DISTINCT ON (tenant_id, user_id, subscription_id, occurred_at::date)
        tenant_id, user_id, subscription_id, occurred_at::date AS day, value_after,
        coalesce(plans[cardinality(plans)], '(none)') AS plan,
        coalesce(intervals[cardinality(intervals)], '(none)') AS billing_interval
    FROM valued
    ORDER BY tenant_id, user_id, subscription_id, occurred_at::date, occurred_at DESC, event_id DESC
),
held AS (
    -- What each subscription holds in each dimension at the end of each of its days; all of a
    -- customer's MRR is in their source.
    SELECT d.tenant_id, d.user_id, d.subscription_id, d.day, v.dimension, v.value, d.value_after AS amount
    FROM subscription_days AS d
    LEFT JOIN customer_sources AS cs ON cs.tenant_id = d.tenant_id AND cs.user_id = d.user_id
    CROSS JOIN LATERAL (
        VALUES ('plan', d.plan), ('interval', d.billing_interval), ('source', coalesce(cs.source, '(none)'))
    ) AS v(dimension, value)
),
deltas AS (
    -- Per customer, dimension, value and day: what their subscriptions put in, less what they held
    -- there until then.
    SELECT tenant_id, user_id, day, dimension, value, sum(amount) AS delta
    FROM (
        SELECT tenant_id, user_id, day, dimension, value, amount FROM held
        UNION ALL
        SELECT tenant_id, user_id,
               lead(day) OVER (PARTITION BY tenant_id, user_id, subscription_id, dimension ORDER BY day),
               dimension, value, -amount
        FROM held
    ) AS moves
    WHERE day IS NOT NULL
    GROUP BY tenant_id, user_id, day, dimension, value
),
grid AS (
    -- Every value the customer ever held, on every day on which any of their subscriptions changed.
    SELECT
        v.tenant_id, v.user_id, d.day, v.dimension, v.value,
        coalesce(x.delta, 0) AS delta,
        sum(coalesce(x.delta, 0)) OVER (
            PARTITION BY v.tenant_id, v.user_id, v.dimension, v.value ORDER BY d.day
        ) AS mrr_after
    FROM (SELECT DISTINCT tenant_id, user_id, dimension, value FROM deltas) AS v
    JOIN (SELECT DISTINCT tenant_id, user_id, day FROM deltas) AS d
      ON d.tenant_id = v.tenant_id AND d.user_id = v.user_id
    LEFT JOIN deltas AS x
      ON x.tenant_id = v.tenant_id AND x.user_id = v.user_id AND x.day = d.day
     AND x.dimension = v.dimension AND x.value = v.value
),
totals AS (
    -- The customer's MRR before and after the day (the same in every dimension), and the value
    -- they count in before and after it: the one holding most of their MRR, ties to the first
    -- value in text order.
    SELECT
        g.*,
        g.mrr_after - g.delta AS mrr_before,
        sum(g.mrr_after) OVER c AS customer_after,
        sum(g.mrr_after - g.delta) OVER c AS customer_before,
        first_value(g.value) OVER (c ORDER BY g.mrr_after DESC, g.value) AS counted_after,
        first_value(g.value) OVER (c ORDER BY g.mrr_after - g.delta DESC, g.value) AS counted_before
    FROM grid AS g
    WINDOW c AS (PARTITION BY g.tenant_id, g.user_id, g.day, g.dimension)
),
history AS (
    -- Whether the customer ended any earlier day with MRR > 0: decides new vs reactivation.
    SELECT
        tenant_id, user_id, day,
        coalesce(bool_or(customer_after > 0) OVER (
            PARTITION BY tenant_id, user_id ORDER BY day ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
        ), false) AS had_mrr
    FROM (SELECT DISTINCT tenant_id, user_id, day, customer_after FROM totals WHERE dimension = 'source') AS days
),
ranked AS (
    -- The customer's expansion fills the values that gained, largest gain first; their
    -- contraction the values that lost, largest loss first. What is left is a transfer.
    SELECT
        t.*, h.had_mrr,
        t.customer_after - t.customer_before AS net,
        coalesce(sum(greatest(t.delta, 0)) OVER (
            PARTITION BY t.tenant_id, t.user_id, t.day, t.dimension ORDER BY t.delta DESC, t.value
            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
        ), 0) AS gained_before,
        coalesce(sum(greatest(-t.delta, 0)) OVER (
            PARTITION BY t.tenant_id, t.user_id, t.day, t.dimension ORDER BY t.delta, t.value
            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
        ), 0) AS lost_before
    FROM totals AS t
    JOIN history AS h ON h.tenant_id = t.tenant_id AND h.user_id = t.user_id AND h.day = t.day
),
moved AS (
    SELECT
        r.*,
        CASE WHEN customer_before > 0 AND net > 0 AND delta > 0
             THEN least(delta, greatest(net - gained_before, 0)) ELSE 0 END AS expansion,
        CASE WHEN customer_after > 0 AND net < 0 AND delta < 0
             THEN least(-delta, greatest(-net - lost_before, 0)) ELSE 0 END AS contraction,
        customer_after > 0 AND value = counted_after AS counts_after,
        customer_before > 0 AND value = counted_before AS counts_before
    FROM ranked AS r
)
SELECT
    m.tenant_id, m.user_id, m.dimension, m.value, m.day, m.mrr_after,
    CASE WHEN customer_before = 0 AND customer_after > 0 AND NOT had_mrr THEN mrr_after ELSE 0 END,
    CASE WHEN customer_before = 0 AND customer_after > 0 AND had_mrr THEN mrr_after ELSE 0 END,
    expansion,
    contraction,
    CASE WHEN customer_before > 0 AND customer_after = 0 THEN mrr_before ELSE 0 END,
    CASE WHEN customer_before > 0 AND customer_after > 0 AND delta > 0 THEN delta - expansion ELSE 0 END,
    CASE WHEN customer_before > 0 AND customer_after > 0 AND delta < 0 THEN -delta - contraction ELSE 0 END,
    counts_after::int,
    (customer_before = 0 AND counts_after AND NOT had_mrr)::int,
    (customer_before = 0 AND counts_after AND had_mrr)::int,
    (customer_after = 0 AND counts_before)::int,
    (customer_before > 0 AND counts_after AND NOT counts_before)::int,
    (customer_after > 0 AND counts_before AND NOT counts_after)::int
FROM moved AS m
JOIN revenue_segment_changed_customers AS c ON c.tenant_id = m.tenant_id AND c.user_id = m.user_id
-- A value whose MRR and count did not change that day has no row; changes that cancel out within
-- the day are no movement (docs/metrics.md#kpi-conventions).
WHERE m.day >= c.from_day
  AND (m.delta <> 0 OR m.counts_after <> m.counts_before)
""",
    r"""
-- The changed tenants' segment days from their first changed day on: per dimension, value and day
-- with a customer row, the sums of the customers' movements, transfers and flows, and the
-- value's MRR and active customers at the end of the day, which are those of the value's last
-- row before that day plus the running sums (the bridges of docs/metrics.md#segment-movements
-- and docs/metrics.md#segment-customers). docs/metrics.md#segment-state.
INSERT INTO tenant_segment_days (
    tenant_id, dimension, value, day, mrr,
    new_revenue, reactivation_revenue, expansion_revenue, contraction_revenue, churned_revenue,
    transfer_in_revenue, transfer_out_revenue,
    active_customers, new_customers, reactivated_customers, churned_customers,
    transferred_in_customers, transferred_out_customers
)
WITH changed AS (
    SELECT tenant_id, min(from_day) AS from_day FROM revenue_segment_changed_customers GROUP BY tenant_id
),
days AS (
    SELECT
        m.tenant_id, m.dimension, m.value, m.day, c.from_day,
        sum(m.new_revenue) AS new_revenue,
        sum(m.reactivation_revenue) AS reactivation_revenue,
        sum(m.expansion_revenue) AS expansion_revenue,
        sum(m.contraction_revenue) AS contraction_revenue,
        sum(m.churned_revenue) AS churned_revenue,
        sum(m.transfer_in_revenue) AS transfer_in_revenue,
        sum(m.transfer_out_revenue) AS transfer_out_revenue,
        sum(m.new_revenue + m.reactivation_revenue + m.expansion_revenue - m.contraction_revenue
            - m.churned_revenue + m.transfer_in_revenue - m.transfer_out_revenue) AS net,
        sum(m.new_customers) AS new_customers,
        sum(m.reactivated_customers) AS reactivated_customers,
        sum(m.churned_customers) AS churned_customers,
        sum(m.transferred_in_customers) AS transferred_in_customers,
        sum(m.transferred_out_customers) AS transferred_out_customers
    FROM changed AS c
    JOIN customer_segment_days AS m ON m.tenant_id = c.tenant_id AND m.day >= c.from_day
    GROUP BY m.tenant_id, m.dimension, m.value, m.day, c.from_day
),
opening AS (
    SELECT k.tenant_id, k.dimension, k.value,
           coalesce(last_day.mrr, 0) AS mrr, coalesce(last_day.active_customers, 0) AS active_customers
    FROM (SELECT DISTINCT tenant_id, dimension, value, from_day FROM days) AS k
    LEFT JOIN LATERAL (
        SELECT t.mrr, t.active_customers FROM tenant_segment_days AS t
        WHERE t.tenant_id = k.tenant_id AND t.dimension = k.dimension AND t.value = k.value
          AND t.day < k.from_day
        ORDER BY t.day DESC
        LIMIT 1
    ) AS last_day ON true
)
SELECT
    d.tenant_id, d.dimension, d.value, d.day,
    o.mrr + sum(d.net) OVER w,
    d.new_revenue, d.reactivation_revenue, d.expansion_revenue, d.contraction_revenue, d.churned_revenue,
    d.transfer_in_revenue, d.transfer_out_revenue,
    o.active_customers + sum(d.new_customers + d.reactivated_customers - d.churned_customers
                             + d.transferred_in_customers - d.transferred_out_customers) OVER w,
    d.new_customers, d.reactivated_customers, d.churned_customers,
    d.transferred_in_customers, d.transferred_out_customers
FROM days AS d
JOIN opening AS o ON o.tenant_id = d.tenant_id AND o.dimension = d.dimension AND o.value = d.value
WINDOW w AS (PARTITION BY d.tenant_id, d.dimension, d.value ORDER BY d.day)
""",
)


def _tenant_fk() -> sa.Column:
    return sa.Column("tenant_id", sa.Text, sa.ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False)


def _segment_day_columns() -> list[sa.Column]:
    return [
        sa.Column("dimension", sa.Text, nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        *(sa.Column(c, sa.Numeric, nullable=False) for c in ("mrr", *MOVEMENTS)),
        *(sa.Column(c, sa.Integer, nullable=False) for c in CUSTOMER_COUNTS),
    ]


def _comment(table: str, columns: list[sa.Column]) -> list[sa.Column]:
    for column in columns:
        column.comment = COMMENTS[table].get(column.name)
    return columns


def upgrade() -> None:
    for name in ("plan_id", "billing_interval"):
        op.add_column(
            "subscription_events", sa.Column(name, sa.Text, nullable=True, comment=COMMENTS["subscription_events"][name])
        )
    op.execute(_FILL_SUBSCRIPTION_EVENTS)
    op.create_table(
        "customer_sources",
        *_comment("customer_sources", [
            _tenant_fk(),
            sa.Column("user_id", sa.Text, nullable=False),
            sa.Column("source", sa.Text, nullable=False),
            sa.Column("signed_up_at", sa.DateTime, nullable=False),
            sa.Column("event_id", sa.Text, nullable=False),
        ]),
        sa.PrimaryKeyConstraint("tenant_id", "user_id", name="customer_sources_pkey"),
    )
    op.create_table(
        "customer_segment_days",
        *_comment("customer_segment_days", [
            _tenant_fk(), sa.Column("user_id", sa.Text, nullable=False), *_segment_day_columns(),
        ]),
        sa.PrimaryKeyConstraint("tenant_id", "user_id", "dimension", "value", "day", name="customer_segment_days_pkey"),
    )
    op.create_index("customer_segment_days_tenant_day_idx", "customer_segment_days", ["tenant_id", "day"])
    op.create_table(
        "tenant_segment_days",
        *_comment("tenant_segment_days", [_tenant_fk(), *_segment_day_columns()]),
        sa.PrimaryKeyConstraint("tenant_id", "dimension", "value", "day", name="tenant_segment_days_pkey"),
    )
    op.create_index("tenant_segment_days_day_idx", "tenant_segment_days", ["day"])
    op.create_table(
        "segment_state_changes",
        *_comment("segment_state_changes", [_tenant_fk(), sa.Column("from_day", sa.Date, nullable=False)]),
    )
    # SQLAlchemy has no xid8 type: the column as revision 0018 adds analytics_events.ingest_xid.
    op.execute(
        "ALTER TABLE segment_state_changes ADD COLUMN ingest_xid xid8 NOT NULL DEFAULT pg_current_xact_id()"
    )
    op.execute(
        "COMMENT ON COLUMN segment_state_changes.ingest_xid IS "
        + "'" + COMMENTS["segment_state_changes"]["ingest_xid"].replace("'", "''") + "'"
    )
    op.add_column(
        "segment_state_changes",
        sa.Column("recorded_at", sa.DateTime, nullable=False, server_default=_NOW,
                  comment=COMMENTS["segment_state_changes"]["recorded_at"]),
    )
    op.create_index("segment_state_changes_ingest_xid_idx", "segment_state_changes", ["ingest_xid"])
    op.create_index("segment_state_changes_recorded_at_idx", "segment_state_changes", ["recorded_at"])
    op.create_table(
        "revenue_segments",
        *_comment("revenue_segments", [
            sa.Column("id", sa.Text, primary_key=True),
            _tenant_fk(),
            sa.Column("period_start", sa.Date, nullable=False),
            sa.Column("period_end", sa.Date, nullable=False),
            sa.Column("period_type", sa.String(20), nullable=False),
            sa.Column("dimension", sa.String(20), nullable=False),
            sa.Column("value", sa.Text, nullable=False),
            sa.Column("mrr", MONEY, nullable=False),
            sa.Column("arr", MONEY, nullable=False),
            *(sa.Column(c, MONEY, nullable=False) for c in MOVEMENTS),
            *(sa.Column(c, sa.Integer, nullable=False) for c in CUSTOMER_COUNTS),
            sa.Column("updated_at", sa.DateTime, nullable=False, server_default=_NOW),
        ]),
        sa.UniqueConstraint(
            "tenant_id", "period_type", "dimension", "period_start", "value",
            name="revenue_segments_tenant_period_dimension_value_key",
        ),
    )
    op.create_index("revenue_segments_period_start_idx", "revenue_segments", ["period_start", "period_type"])
    for table in NEW_TABLES:
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO analytics_app")
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY {table}_tenant_isolation ON {table} FOR ALL TO analytics_app "
            f"USING ({TENANT_MATCHES}) WITH CHECK ({TENANT_MATCHES})"
        )
    op.execute(_FILL_CUSTOMER_SOURCES)
    # The segment state of every customer of the existing subscription history, by the statements
    # that maintained it when this revision was written (a migration keeps its own copy).
    op.execute(_ALL_CUSTOMERS)
    op.execute("ANALYZE revenue_segment_changed_customers")
    for statement in _BUILD_STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    for table in reversed(NEW_TABLES):
        op.drop_table(table)
    for name in ("billing_interval", "plan_id"):
        op.drop_column("subscription_events", name)
