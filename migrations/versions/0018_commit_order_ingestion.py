"""Ingestion by commit order (docs/ingestion.md).

`analytics_events.ingest_xid` is filled by the database on insert with the inserting transaction's
id (`pg_current_xact_id()`), and each derived state's watermark becomes the snapshot its last
absorb read under (`state_watermarks.absorbed_snapshot`). An absorb reads exactly the events whose
transaction is visible in its own snapshot and was not in the last one: every committed event
once, whatever its `created_at` or `timestamp`, and a transaction still in flight at one absorb is
read by the next.

Upgrade of a database that already holds absorbed state:
- the column is added without rewriting the table; rows inserted before the upgrade keep
  `ingest_xid` NULL ("committed before commit-order ingestion");
- every state starts without a snapshot, so its first absorb after the upgrade reads every event
  committed before it, the NULL rows included. Every absorb is idempotent (an event already in a
  state is skipped, docs/ingestion.md#upgrading), so nothing is absorbed twice, and an event the
  created_at watermark had missed (a backdated import, a long transaction) is absorbed then;
- the created_at index, which only the absorbs, the late-data sensor and retention read, is
  replaced by the index on ingest_xid.

Revision ID: 0018_commit_order_ingestion
Revises: 0017_faster_event_contract
"""

from alembic import op

revision = "0018_commit_order_ingestion"
down_revision = "0017_faster_event_contract"
branch_labels = None
depends_on = None

INGEST_XID_COMMENT = (
    "Id of the inserting transaction, set by the database; NULL if inserted before revision 0018. "
    "State absorbs in this order (docs/ingestion.md#commit-order)"
)
SNAPSHOT_COMMENT = (
    "The snapshot of the state's last absorb: every event whose ingest_xid is visible in it is in the "
    "state; NULL before its first (docs/ingestion.md#commit-order)"
)
ABSORBED_THROUGH_COMMENT = "When the state's last absorb read analytics_events (UTC)."
# The section on created_at in docs/events.md is renamed with this revision.
CREATED_AT_COMMENT = (
    "When the row was recorded, UTC; later than timestamp for a late event "
    "(docs/events.md#created_at-ingest_xid-and-late-events)"
)
OLD_CREATED_AT_COMMENT = (
    "When the row was recorded, UTC; later than timestamp for a late event "
    "(docs/events.md#created_at-late-events-and-its-index)"
)


def upgrade() -> None:
    # No default on ADD COLUMN: a volatile default would rewrite every existing row.
    op.execute("ALTER TABLE analytics_events ADD COLUMN ingest_xid xid8")
    op.execute("ALTER TABLE analytics_events ALTER COLUMN ingest_xid SET DEFAULT pg_current_xact_id()")
    op.alter_column("analytics_events", "ingest_xid", comment=INGEST_XID_COMMENT)
    # NULLS FIRST: the rows inserted before this revision (NULL) sort below every new id, so new
    # entries go to the right end of the index instead of splitting pages in its middle.
    op.execute("CREATE INDEX analytics_events_ingest_xid_idx ON analytics_events (ingest_xid NULLS FIRST)")
    op.execute("DROP INDEX analytics_events_created_at_idx")

    op.execute("ALTER TABLE state_watermarks ADD COLUMN absorbed_snapshot pg_snapshot")
    op.alter_column("state_watermarks", "absorbed_snapshot", comment=SNAPSHOT_COMMENT)
    op.alter_column("state_watermarks", "absorbed_through", comment=ABSORBED_THROUGH_COMMENT)
    op.alter_column("analytics_events", "created_at", comment=CREATED_AT_COMMENT, existing_comment=OLD_CREATED_AT_COMMENT)


def downgrade() -> None:
    # Back to created_at watermarks: absorbed_through is kept by every absorb, so the states
    # continue from their last absorb's time, re-reading the usual overlap.
    op.alter_column("state_watermarks", "absorbed_through", comment=None, existing_comment=ABSORBED_THROUGH_COMMENT)
    op.alter_column("analytics_events", "created_at", comment=OLD_CREATED_AT_COMMENT, existing_comment=CREATED_AT_COMMENT)
    op.execute("ALTER TABLE state_watermarks DROP COLUMN absorbed_snapshot")
    op.execute("CREATE INDEX analytics_events_created_at_idx ON analytics_events (created_at)")
    op.execute("DROP INDEX analytics_events_ingest_xid_idx")
    op.execute("ALTER TABLE analytics_events DROP COLUMN ingest_xid")
