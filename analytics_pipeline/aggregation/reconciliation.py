"""Reconciliation: proof that every committed event is in the derived states, so that a gap
(an absorb that lost an event, a state row deleted by hand) is loud instead of silent.

One ERROR check per declared state (`absorbs_every_committed_event`): per tenant and day, the
events the state has absorbed by its last snapshot (analytics_pipeline/aggregation/state.py) that are still in
analytics_events, raw, against those of them the state holds (each state's `reconcile_sql`, in its
domain's sql/ folder). Events committed since the last absorb are not counted: they are new, not
lost. The schedule runs the checks once a day; a failure is alerted like every ERROR check
(analytics_pipeline/alerts) and names the tenants and days (docs/ingestion.md#reconciliation).
"""

from collections.abc import Sequence

import dagster as dg
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..core.resources import AnalyticsDatabase
from . import state
from .declarations import DerivedState

ABSORBS_EVERY_COMMITTED_EVENT_CHECK = "absorbs_every_committed_event"
ABSORBS_EVERY_COMMITTED_EVENT_DESCRIPTION = (
    "Every event the state has absorbed that is still in analytics_events is in the state: per tenant and "
    "day, the raw events committed before its last absorb against those it holds. Fails naming each tenant "
    "and day where they differ (docs/ingestion.md#reconciliation)."
)

# At most this many (tenant, day) differences are named in the check's metadata.
EXAMPLES = 20


def _absorbed_sql(snapshot: str | None) -> str:
    """The events a state with this last snapshot has absorbed (those inserted before revision
    0018 included once it has one); none before its first absorb."""
    if snapshot is None:
        return "FALSE"
    return "(e.ingest_xid IS NULL OR pg_visible_in_snapshot(e.ingest_xid, CAST(:absorbed AS pg_snapshot)))"


def reconcile(conn: Connection, derived: DerivedState) -> dg.AssetCheckResult:
    """The check's result for one state, evaluated in one statement."""
    snapshot = state.absorbed_snapshots(conn).get(derived.name)
    statement = derived.reconcile_sql.replace("{absorbed}", _absorbed_sql(snapshot))
    differences = conn.execute(sa.text(statement), {"absorbed": snapshot}).all()
    missing = sum(raw - held for _, _, raw, held in differences)
    return dg.AssetCheckResult(
        asset_key=dg.AssetKey(derived.name),
        check_name=ABSORBS_EVERY_COMMITTED_EVENT_CHECK,
        passed=not differences,
        severity=dg.AssetCheckSeverity.ERROR,
        description=(
            None if not differences
            else f"{missing} absorbed events missing from {derived.table} on {len(differences)} tenant days"
        ),
        metadata={
            "absorbed_snapshot": snapshot or "none: not absorbed yet",
            "tenant_days_with_missing_events": len(differences),
            "missing_events": int(missing),
            "examples": dg.MetadataValue.json(
                [
                    f"tenant {tenant}, {day}: {raw} events absorbed, {held} in {derived.table}"
                    for tenant, day, raw, held in differences[:EXAMPLES]
                ]
            ),
        },
    )


def reconciliation(states: Sequence[DerivedState]) -> dg.Definitions:
    """The check of every state in `states` (every domain's: analytics_pipeline/domains.py), its
    job, and the daily schedule."""
    by_name = {s.name: s for s in states}

    @dg.multi_asset_check(
        specs=[
            dg.AssetCheckSpec(
                ABSORBS_EVERY_COMMITTED_EVENT_CHECK, asset=s.name, description=ABSORBS_EVERY_COMMITTED_EVENT_DESCRIPTION
            )
            for s in states
        ],
        can_subset=True,
        name="reconcile_derived_states",
    )
    def reconcile_derived_states(context: dg.AssetCheckExecutionContext, database: AnalyticsDatabase):
        """Reconciles every selected derived state with the raw events it has absorbed."""
        for key in sorted(context.selected_asset_check_keys, key=lambda k: k.asset_key.path[-1]):
            with database.transaction() as conn:
                yield reconcile(conn, by_name[key.asset_key.path[-1]])

    reconcile_states_job = dg.define_asset_job(
        "reconcile_states_job",
        selection=dg.AssetSelection.checks(reconcile_derived_states),
        description="Reconcile every derived state with the raw events it has absorbed.",
    )
    reconcile_states_schedule = dg.ScheduleDefinition(
        name="reconcile_states_daily",
        job=reconcile_states_job,
        cron_schedule="15 3 * * *",
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Every day at 03:15 UTC: every derived state holds every event it has absorbed.",
    )
    return dg.Definitions(
        asset_checks=[reconcile_derived_states], jobs=[reconcile_states_job], schedules=[reconcile_states_schedule]
    )
