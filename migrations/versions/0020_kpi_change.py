"""The change of a figure against the previous period, one definition for every reader of the
aggregates: `analytics_change_pct`, `analytics_change_points` and `analytics_kpi_change`.

The Dashboard API's /v1/kpis (analytics_pipeline/api/sql/kpis.sql) and the reports' KPI block
(analytics_pipeline/reports/sql/revenue_kpis.sql) call them, so that a KPI's change is the same
number in both (docs/metrics.md#change-against-the-previous-period):

- `analytics_change_pct(current, previous)`: the change in percent of the previous value, rounded
  to one decimal; NULL when either is NULL or the previous is 0.
- `analytics_change_points(current, previous)`: the change of a ratio (a fraction, 1 = 100 %) in
  percentage points, rounded to one decimal; NULL when either is NULL. A retention of 90 % after
  80 % is +10 points, which a percent change (+12.5 %) would misstate.
- `analytics_kpi_change(unit, current, previous)`: the one change a KPI is shown with, in points
  for a `ratio`, in percent otherwise.

In `numeric`, as the reports computed it inline before: rounded half away from zero, never -0.0.

Revision ID: 0020_kpi_change
Revises: 0019_aggregate_freshness
"""

from alembic import op

revision = "0020_kpi_change"
down_revision = "0019_aggregate_freshness"
branch_labels = None
depends_on = None

FUNCTIONS = """
CREATE FUNCTION analytics_change_pct(current numeric, previous numeric) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT round(100 * (current - previous) / nullif(abs(previous), 0), 1)
$$;

CREATE FUNCTION analytics_change_points(current numeric, previous numeric) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT round(100 * (current - previous), 1)
$$;

CREATE FUNCTION analytics_kpi_change(unit text, current numeric, previous numeric) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN unit = 'ratio' THEN analytics_change_points(current, previous)
                ELSE analytics_change_pct(current, previous) END
$$;
"""


def upgrade() -> None:
    op.execute(FUNCTIONS)


def downgrade() -> None:
    op.execute("DROP FUNCTION analytics_kpi_change(text, numeric, numeric)")
    op.execute("DROP FUNCTION analytics_change_points(numeric, numeric)")
    op.execute("DROP FUNCTION analytics_change_pct(numeric, numeric)")
