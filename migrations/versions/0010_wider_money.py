"""Money that fits: every money column of the aggregates and of the derived state becomes
NUMERIC(18,2), and avg_duration_minutes likewise (docs/metrics.md#money-columns).

The specification's DECIMAL(10,2) holds less than 100,000,000 currency units, which a tenant
billing in KRW, JPY, IDR or VND passes in a year with a modest business; an ARR, a month's
payments or one cohort's revenue then failed the whole run. The specification's revision
(20251106_add_analytics_tables) is left as it is; this one widens after it.

Widening a numeric's precision at the same scale changes no stored value, so PostgreSQL does not
rewrite the tables. The downgrade narrows back and refuses, naming the column, when a stored value
would not fit the narrower type (PostgreSQL would otherwise fail mid-way with a bare overflow).

Revision ID: 0010_wider_money
Revises: 0009_state_row_level_security
"""

import sqlalchemy as sa
from alembic import op

from analytics_pipeline.core.migrate import MigrationRefused

revision = "0010_wider_money"
down_revision = "0009_state_row_level_security"
branch_labels = None
depends_on = None

WIDE = (18, 2)

# (table, column, precision before this revision); the scale is 2 throughout.
COLUMNS = (
    ("revenue_aggregates", "mrr", 10),
    ("revenue_aggregates", "arr", 10),
    ("revenue_aggregates", "new_revenue", 10),
    ("revenue_aggregates", "churned_revenue", 10),
    ("revenue_aggregates", "expansion_revenue", 10),
    ("revenue_aggregates", "total_revenue", 10),
    ("revenue_aggregates", "refund_amount", 10),
    ("revenue_aggregates", "contraction_revenue", 10),
    ("revenue_aggregates", "reactivation_revenue", 10),
    ("user_cohorts", "revenue", 10),
    ("user_cohorts", "ltv", 10),
    ("tournament_aggregates", "avg_duration_minutes", 10),
    ("tournament_aggregates", "revenue", 10),
    ("subscription_events", "monthly_value", 12),
)


def upgrade() -> None:
    for table, column, _ in COLUMNS:
        op.alter_column(table, column, type_=sa.Numeric(*WIDE))


def downgrade() -> None:
    conn = op.get_bind()
    too_wide = []
    for table, column, precision in COLUMNS:
        limit = 10 ** (precision - 2)
        count, largest = conn.execute(
            sa.text(f"SELECT count(*), max(abs({column})) FROM {table} WHERE abs({column}) >= :limit"),
            {"limit": limit},
        ).one()
        if count:
            too_wide.append(
                f"{table}.{column} ({count} rows, up to {largest}; NUMERIC({precision},2) holds < {limit:,})"
            )
    if too_wide:
        raise MigrationRefused(
            "downgrade below 0010_wider_money refused: values do not fit the narrower money columns: "
            + "; ".join(too_wide)
        )
    for table, column, precision in COLUMNS:
        op.alter_column(table, column, type_=sa.Numeric(precision, 2))
