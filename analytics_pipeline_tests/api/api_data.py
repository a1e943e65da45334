"""A tenant's aggregates written straight into the tables (not by the pipeline) for the API and
dashboard tests: two years of self-consistent revenue day rows (MRR = opening + movements, active
customers = opening + customer flows) with their week, month and quarter rows, a cohort triangle,
tournament rows and a scheduled report, ending today."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from ..helpers import add_tenant

TODAY = dt.datetime.now(dt.UTC).date()

REVENUE_DAYS = """
WITH days AS (
    SELECT d::date AS day, row_number() OVER (ORDER BY d) AS n
    FROM generate_series(CAST(:today AS date) - 729, CAST(:today AS date), interval '1 day') AS d
),
flows AS (
    SELECT day, n,
           round((40 + 25 * sin(n / 9.0) + :scale * 3)::numeric, 2) AS new_revenue,
           round((12 + 6 * cos(n / 5.0))::numeric, 2) AS expansion_revenue,
           CASE WHEN n % 7 = 0 THEN 9.00 ELSE 0 END AS reactivation_revenue,
           round((5 + 3 * sin(n / 4.0))::numeric, 2) AS contraction_revenue,
           round((22 + 14 * cos(n / 11.0))::numeric, 2) AS churned_revenue,
           round((300 + 120 * sin(n / 6.0) + :scale * 10)::numeric, 2) AS total_revenue,
           2 + n % 3 AS new_customers,
           CASE WHEN n % 7 = 0 THEN 1 ELSE 0 END AS reactivated_customers,
           1 + n % 2 + :scale % 2 AS churned_customers
    FROM days
)
INSERT INTO revenue_aggregates (id, tenant_id, period_start, period_end, period_type, mrr, arr,
    new_revenue, churned_revenue, expansion_revenue, contraction_revenue, reactivation_revenue,
    total_revenue, payment_count, payment_success_count, refund_count, refund_amount,
    active_customers, new_customers, reactivated_customers, churned_customers)
SELECT :tenant || ':day:' || day, :tenant, day, day, 'day', mrr, mrr * 12, new_revenue,
       churned_revenue, expansion_revenue, contraction_revenue, reactivation_revenue,
       total_revenue, 12, 11, n % 3, (n % 3) * 5,
       active_customers, new_customers, reactivated_customers, churned_customers
FROM (
    SELECT *, :opening + sum(new_revenue + expansion_revenue + reactivation_revenue
                             - contraction_revenue - churned_revenue) OVER (ORDER BY day) AS mrr,
           40 * :scale + sum(new_customers + reactivated_customers - churned_customers) OVER (ORDER BY day)
               AS active_customers
    FROM flows
) AS f
"""

# Longer periods from the day rows, as docs/metrics.md#periods defines them.
REVENUE_PERIODS = """
INSERT INTO revenue_aggregates (id, tenant_id, period_start, period_end, period_type, mrr, arr,
    new_revenue, churned_revenue, expansion_revenue, contraction_revenue, reactivation_revenue,
    total_revenue, payment_count, payment_success_count, refund_count, refund_amount,
    active_customers, new_customers, reactivated_customers, churned_customers)
SELECT :tenant || ':' || p.kind || ':' || start, :tenant, start,
       (start + p.length - interval '1 day')::date, p.kind,
       (array_agg(mrr ORDER BY period_start DESC))[1], (array_agg(arr ORDER BY period_start DESC))[1],
       sum(new_revenue), sum(churned_revenue), sum(expansion_revenue), sum(contraction_revenue),
       sum(reactivation_revenue), sum(total_revenue), sum(payment_count), sum(payment_success_count),
       sum(refund_count), sum(refund_amount),
       (array_agg(active_customers ORDER BY period_start DESC))[1], sum(new_customers),
       sum(reactivated_customers), sum(churned_customers)
FROM revenue_aggregates AS r
CROSS JOIN (VALUES ('week', interval '7 days'), ('month', interval '1 month'),
                   ('quarter', interval '3 months')) AS p(kind, length)
CROSS JOIN LATERAL (SELECT date_trunc(p.kind, r.period_start)::date AS start) AS s
WHERE r.tenant_id = :tenant AND r.period_type = 'day'
GROUP BY p.kind, p.length, start
"""

COHORTS = """
INSERT INTO user_cohorts (id, tenant_id, cohort_month, cohort_size, month_number, retained_users,
    retention_rate, revenue, ltv)
SELECT :tenant || ':' || c || ':' || m, :tenant, c, size, m, retained,
       round(100.0 * retained / size, 2), retained * 9, round(9.0 * sum(retained) OVER w / size, 2)
FROM (
    SELECT c::date AS c, m, 80 + :scale * 10 + (extract(month FROM c)::int * 7) % 40 AS size
    FROM generate_series(date_trunc('month', CAST(:today AS date)) - interval '11 months',
                         date_trunc('month', CAST(:today AS date)), interval '1 month') AS c
    CROSS JOIN LATERAL generate_series(0, (extract(year FROM age(date_trunc('month', CAST(:today AS date)), c)) * 12
                                           + extract(month FROM age(date_trunc('month', CAST(:today AS date)), c)))::int) AS m
) AS g
CROSS JOIN LATERAL (SELECT CASE WHEN m = 0 THEN size ELSE round(size * (0.62 * exp(-m / 5.0) + 0.12))::int END AS retained) AS r
WINDOW w AS (PARTITION BY c ORDER BY m)
"""

TOURNAMENTS = """
INSERT INTO tournament_aggregates (id, tenant_id, period_start, period_end, period_type,
    tournament_count, completed_count, completion_rate, total_players, avg_players,
    avg_duration_minutes, most_popular_format, revenue)
SELECT :tenant || ':' || p.kind || ':' || start, :tenant, start, (start + p.length - interval '1 day')::date,
       p.kind, sum(t), sum(done), round(100.0 * sum(done) / sum(t), 2), sum(t) * 16,
       16, 95, (array_agg(fmt ORDER BY t DESC))[1], sum(t) * 20
FROM (
    SELECT d::date AS day, 3 + (extract(doy FROM d)::int % 5) + :scale AS t,
           2 + (extract(doy FROM d)::int % 4) AS done,
           (ARRAY['single_elimination', 'round_robin', 'swiss', 'double_elimination'])[1 + (extract(doy FROM d)::int % 7) % 4] AS fmt
    FROM generate_series(CAST(:today AS date) - 364, CAST(:today AS date), interval '1 day') AS d
) AS days
CROSS JOIN (VALUES ('day', interval '1 day'), ('week', interval '7 days'), ('month', interval '1 month'),
                   ('quarter', interval '3 months')) AS p(kind, length)
CROSS JOIN LATERAL (SELECT date_trunc(p.kind, day)::date AS start) AS s
GROUP BY p.kind, p.length, start
"""

REPORTS = """
WITH report AS (
    INSERT INTO scheduled_reports (id, tenant_id, name, report_type, frequency, recipients, next_run_at, last_run_at)
    VALUES (:tenant || '-weekly', :tenant, 'Weekly revenue summary', 'revenue_summary', 'weekly',
            ARRAY['finance@example.com'], CAST(:today AS date) + 5, CAST(:today AS date) - 2)
    RETURNING id
)
INSERT INTO report_deliveries (report_id, tenant_id, scheduled_for, status, attempts, sent_at)
SELECT id, :tenant, CAST(:today AS date) - 2 + time '08:00', 'sent', 1, CAST(:today AS date) - 2 + time '08:01'
FROM report
"""


def add_dashboard_tenant(engine, tenant_id: str, today, scale: int = 1, opening_mrr: int = 4000) -> None:
    """Aggregates of `tenant_id` ending `today`; `scale` makes tenants differ."""
    params = {"tenant": tenant_id, "today": today, "scale": scale, "opening": opening_mrr}
    with engine.begin() as conn:
        add_tenant(conn, tenant_id)
        for statement in (REVENUE_DAYS, REVENUE_PERIODS, COHORTS, TOURNAMENTS, REPORTS):
            conn.execute(sa.text(statement), params)


@pytest.fixture
def two_tenants(engine):
    """acme and globex, with rows of different sizes."""
    add_dashboard_tenant(engine, "acme", TODAY, scale=1, opening_mrr=4000)
    add_dashboard_tenant(engine, "globex", TODAY, scale=5, opening_mrr=9000)


# Day rows from the first day of last month to today in which every bad-news figure is higher
# this month than on any day of last month, and MRR grows every day: whichever days the tiles
# compare (the month to date against as many days of last month, or two whole months), churn,
# contraction and refunds rose and MRR rose.
WORSE_THIS_MONTH = """
INSERT INTO revenue_aggregates (id, tenant_id, period_start, period_end, period_type, mrr, arr,
    new_revenue, churned_revenue, expansion_revenue, contraction_revenue, reactivation_revenue,
    total_revenue, payment_count, payment_success_count, refund_count, refund_amount,
    active_customers, new_customers, reactivated_customers, churned_customers)
SELECT :tenant || ':day:' || day, :tenant, day, day, 'day', 1000 + n * 50, (1000 + n * 50) * 12,
       60, CASE WHEN this THEN 9 ELSE 5 END, 0, CASE WHEN this THEN 4 ELSE 2 END, 0,
       300, 10, 10, CASE WHEN this THEN 3 ELSE 1 END, CASE WHEN this THEN 30 ELSE 10 END,
       100 + n, 3, 0, CASE WHEN this THEN 2 ELSE 1 END
FROM (
    SELECT d::date AS day, row_number() OVER (ORDER BY d) AS n,
           d >= date_trunc('month', CAST(:today AS date)) AS this
    FROM generate_series(date_trunc('month', CAST(:today AS date)) - interval '1 month',
                         CAST(:today AS date), interval '1 day') AS d
) AS days
"""


def add_worse_month_tenant(engine, tenant_id: str, today) -> None:
    """`tenant_id` whose churn, contraction and refunds rose this month while MRR rose, with the
    week, month and quarter rows of those days."""
    params = {"tenant": tenant_id, "today": today, "scale": 1, "opening": 0}
    with engine.begin() as conn:
        add_tenant(conn, tenant_id)
        for statement in (WORSE_THIS_MONTH, REVENUE_PERIODS):
            conn.execute(sa.text(statement), params)


# revenue_segments rows from the tenant's revenue_aggregates rows (every period type): each
# dimension's values take the shares [low, high) of each column, rounded so that they add up to the
# row exactly (the identity of docs/metrics.md#revenue_segments); the plan `pro` takes 2.50 of
# transfers in from `basic` on every row. `:extra_plans` more plans (`plan-01`...) take 0.01 of MRR
# each from `team`, so that a tenant can have more plans than the dashboard stacks.
SEGMENTS = """
WITH shares AS (
    SELECT * FROM (VALUES ('plan', 'basic', 0.0, 0.5), ('plan', 'pro', 0.5, 0.8), ('plan', 'team', 0.8, 1.0),
                          ('interval', 'month', 0.0, 0.7), ('interval', 'year', 0.7, 1.0),
                          ('source', 'ads', 0.0, 0.4), ('source', 'organic', 0.4, 0.75),
                          ('source', '(none)', 0.75, 1.0)) AS s(dimension, value, low, high)
),
split AS (
    SELECT r.*, s.dimension, s.value,
           round(r.mrr * s.high, 2) - round(r.mrr * s.low, 2) AS part_mrr,
           round(r.new_revenue * s.high, 2) - round(r.new_revenue * s.low, 2) AS part_new,
           round(r.reactivation_revenue * s.high, 2) - round(r.reactivation_revenue * s.low, 2) AS part_reactivation,
           round(r.expansion_revenue * s.high, 2) - round(r.expansion_revenue * s.low, 2) AS part_expansion,
           round(r.contraction_revenue * s.high, 2) - round(r.contraction_revenue * s.low, 2) AS part_contraction,
           round(r.churned_revenue * s.high, 2) - round(r.churned_revenue * s.low, 2) AS part_churned,
           floor(r.active_customers * s.high) - floor(r.active_customers * s.low) AS part_active,
           floor(r.new_customers * s.high) - floor(r.new_customers * s.low) AS part_new_customers,
           floor(r.reactivated_customers * s.high) - floor(r.reactivated_customers * s.low) AS part_reactivated,
           floor(r.churned_customers * s.high) - floor(r.churned_customers * s.low) AS part_churned_customers
    FROM revenue_aggregates AS r CROSS JOIN shares AS s
    WHERE r.tenant_id = :tenant
),
extra AS (
    SELECT split.*, e.n
    FROM split CROSS JOIN LATERAL (
        SELECT n FROM generate_series(1, CAST(:extra_plans AS int)) AS n WHERE split.value = 'team'
        UNION ALL SELECT 0
    ) AS e
)
INSERT INTO revenue_segments (id, tenant_id, period_start, period_end, period_type, dimension, value, mrr, arr,
    new_revenue, reactivation_revenue, expansion_revenue, contraction_revenue, churned_revenue,
    transfer_in_revenue, transfer_out_revenue, active_customers, new_customers, reactivated_customers,
    churned_customers, transferred_in_customers, transferred_out_customers)
SELECT :tenant || ':' || period_type || ':' || period_start || ':' || dimension || ':' || v, :tenant, period_start,
       period_end, period_type, dimension, v, m, m * 12,
       CASE WHEN n = 0 THEN part_new ELSE 0 END, CASE WHEN n = 0 THEN part_reactivation ELSE 0 END,
       CASE WHEN n = 0 THEN part_expansion ELSE 0 END, CASE WHEN n = 0 THEN part_contraction ELSE 0 END,
       CASE WHEN n = 0 THEN part_churned ELSE 0 END,
       CASE WHEN v = 'pro' THEN 2.50 ELSE 0 END, CASE WHEN v = 'basic' THEN 2.50 ELSE 0 END,
       CASE WHEN n = 0 THEN part_active ELSE 0 END, CASE WHEN n = 0 THEN part_new_customers ELSE 0 END,
       CASE WHEN n = 0 THEN part_reactivated ELSE 0 END, CASE WHEN n = 0 THEN part_churned_customers ELSE 0 END,
       CASE WHEN v = 'pro' THEN 1 ELSE 0 END, CASE WHEN v = 'basic' THEN 1 ELSE 0 END
FROM extra
CROSS JOIN LATERAL (
    SELECT CASE WHEN n = 0 THEN value ELSE 'plan-' || lpad(n::text, 2, '0') END AS v,
           CASE WHEN n = 0 THEN part_mrr - 0.01 * CAST(:extra_plans AS int) * (value = 'team')::int ELSE 0.01 END AS m
) AS p
"""


def add_segment_rows(engine, tenant_id: str, extra_plans: int = 0) -> None:
    """revenue_segments rows of `tenant_id` split from its revenue_aggregates rows (SEGMENTS)."""
    with engine.begin() as conn:
        conn.execute(sa.text(SEGMENTS), {"tenant": tenant_id, "extra_plans": extra_plans})


# user_cohort_segments rows from the tenant's user_cohorts rows: in each dimension, each cohort's
# users split into values by the shares [low, high) of its size (floor, so that they add up), the
# retained users and revenue likewise, as docs/metrics.md#cohort-segments' identity asks; rates and
# ltv per value from its own figures.
COHORT_SEGMENTS = """
WITH shares AS (
    SELECT * FROM (VALUES ('first_plan', 'basic', 0.0, 0.5), ('first_plan', 'pro', 0.5, 0.8),
                          ('first_plan', '(none)', 0.8, 1.0), ('source', 'ads', 0.0, 0.4),
                          ('source', 'organic', 0.4, 1.0)) AS s(dimension, value, low, high)
),
split AS (
    SELECT c.tenant_id, c.cohort_month, c.month_number, s.dimension, s.value,
           floor(c.cohort_size * s.high) - floor(c.cohort_size * s.low) AS size,
           floor(c.retained_users * s.high) - floor(c.retained_users * s.low) AS retained,
           round(c.revenue * s.high, 2) - round(c.revenue * s.low, 2) AS revenue
    FROM user_cohorts AS c CROSS JOIN shares AS s
    WHERE c.tenant_id = :tenant
)
INSERT INTO user_cohort_segments (id, tenant_id, cohort_month, month_number, dimension, value, cohort_size,
    retained_users, retention_rate, revenue, ltv)
SELECT tenant_id || ':' || cohort_month || ':' || month_number || ':' || dimension || ':' || value, tenant_id,
       cohort_month, month_number, dimension, value, size, retained, coalesce(round(retained / nullif(size, 0), 4), 0), revenue,
       round(sum(revenue) OVER (PARTITION BY dimension, value, cohort_month ORDER BY month_number) / nullif(size, 0), 2)
FROM split
"""


def add_cohort_segment_rows(engine, tenant_id: str) -> None:
    """user_cohort_segments rows of `tenant_id` split from its user_cohorts rows (COHORT_SEGMENTS)."""
    with engine.begin() as conn:
        conn.execute(sa.text(COHORT_SEGMENTS), {"tenant": tenant_id})


@pytest.fixture
def two_segmented_tenants(two_tenants, engine):
    """two_tenants with their revenue_segments and user_cohort_segments rows; globex has 12 plans
    more than acme's three."""
    add_segment_rows(engine, "acme")
    add_segment_rows(engine, "globex", extra_plans=12)
    add_cohort_segment_rows(engine, "acme")
    add_cohort_segment_rows(engine, "globex")
