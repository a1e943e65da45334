"""revenue_segments: the row's key (tenant, period type, dimension, period start, value) is the
primary key, and `id` an unindexed column.

Each row is identified by its key, which the unique constraint of revision 0021 enforced already;
the primary key on `id` (the same key spelled as one string) was a second unique index that no
read uses and every write maintains: a backfill inserts a million rows into it
(bench/segments_bench.py). `id` keeps its values. The unique constraint gives way to the primary
key on the same columns (`revenue_segments_pkey`), whose index is built once here.

Revision ID: 0026_revenue_segments_key
Revises: 0025_aggregate_freshness_comment
"""

from alembic import op

revision = "0026_revenue_segments_key"
down_revision = "0025_aggregate_freshness_comment"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE revenue_segments DROP CONSTRAINT revenue_segments_pkey")
    op.execute("ALTER TABLE revenue_segments DROP CONSTRAINT revenue_segments_tenant_period_dimension_value_key")
    op.execute(
        "ALTER TABLE revenue_segments ADD CONSTRAINT revenue_segments_pkey "
        "PRIMARY KEY (tenant_id, period_type, dimension, period_start, value)"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE revenue_segments DROP CONSTRAINT revenue_segments_pkey")
    op.execute(
        "ALTER TABLE revenue_segments ADD CONSTRAINT revenue_segments_tenant_period_dimension_value_key "
        "UNIQUE (tenant_id, period_type, dimension, period_start, value)"
    )
    op.execute("ALTER TABLE revenue_segments ADD CONSTRAINT revenue_segments_pkey PRIMARY KEY (id)")
