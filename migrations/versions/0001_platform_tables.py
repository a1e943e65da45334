"""Minimal organizations and users, which the platform normally owns.

Where the platform already created them, nothing is created or changed. Tables created here are
marked with a table comment so that the downgrade drops only what this revision created.

Revision ID: 0001_platform_tables
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_platform_tables"
down_revision = None
branch_labels = None
depends_on = None

MARKER = "created by analytics-pipeline migration 0001_platform_tables"


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "organizations" not in existing:
        op.create_table(
            "organizations",
            sa.Column("id", sa.Text, primary_key=True),
            sa.Column("name", sa.Text, nullable=False),
            sa.Column("created_at", sa.DateTime, nullable=False, server_default=sa.text("timezone('utc', now())")),
        )
        op.execute(f"COMMENT ON TABLE organizations IS '{MARKER}'")
    if "users" not in existing:
        op.create_table(
            "users",
            sa.Column("id", sa.Text, primary_key=True),
            sa.Column(
                "tenant_id",
                sa.Text,
                sa.ForeignKey("organizations.id", ondelete="CASCADE"),
                nullable=False,
            ),
            sa.Column("email", sa.Text, nullable=True),
            sa.Column("created_at", sa.DateTime, nullable=False, server_default=sa.text("timezone('utc', now())")),
        )
        op.execute(f"COMMENT ON TABLE users IS '{MARKER}'")


def downgrade() -> None:
    bind = op.get_bind()
    for table in ("users", "organizations"):
        comment = bind.execute(
            sa.text("SELECT obj_description(to_regclass(:t), 'pg_class')"), {"t": table}
        ).scalar()
        if comment == MARKER:
            op.drop_table(table)
