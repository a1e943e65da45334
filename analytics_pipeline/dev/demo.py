"""The first start of `analytics-pipeline dev` on an empty database: after the demo data set is
loaded, one backfill of every aggregate (and the state it absorbs) over the demo's range, which
the user watches in the UI, and one demo scheduled report per frequency, delivered to the outbox
once the aggregates they read are there. The aggregates' partitions start on the demo's first
day, so that none shows as missing once the backfill is done.

Dagster is imported inside the functions: the rest of the command line does not need it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from ..core import db
from ..reports.schedule import anchor_for, latest_due, next_occurrence
from ..reports.validation import validate_report

DEMO_RECIPIENT = "analytics@demo.example"
# One per frequency, together showing every section a report can have.
DEMO_REPORTS = (
    ("daily", "revenue_summary", "Daily revenue (demo)"),
    ("weekly", "tournament_performance", "Weekly tournaments (demo)"),
    ("monthly", "comprehensive", "Monthly overview (demo)"),
)
BACKFILL_TITLE = "Demo data: every aggregate over the demo's range"


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def add_demo_reports(url: str, now: dt.datetime | None = None) -> list[str]:
    """Add the demo reports, paused, to the first demo organization; returns their ids.

    Each one's next_run_at is its latest occurrence before now, so it is due the moment it is
    resumed (`resume_demo_reports`): its first delivery then reports on aggregates that exist.
    """
    now = now or utc_now()
    ids = []
    with db.engine_for(url).begin() as conn:
        tenant = conn.execute(sa.text("SELECT min(id) FROM organizations")).scalar()
        if tenant is None:
            return []
        for frequency, report_type, name in DEMO_REPORTS:
            parameters = {"send_time": "08:00"}
            parameters |= {"weekly": {"day_of_week": 1}, "monthly": {"day_of_month": 1}}.get(frequency, {})
            report = validate_report(name=name, report_type=report_type, frequency=frequency,
                                     recipients=[DEMO_RECIPIENT], parameters=parameters)
            anchor = anchor_for(frequency, report.parameters, now)
            # An occurrence a little over a month back, then the latest one up to now.
            due, _ = latest_due(next_occurrence(now - dt.timedelta(days=40), anchor), now, anchor)
            report_id = f"rpt_{uuid.uuid4().hex[:16]}"
            conn.execute(
                sa.text(
                    "INSERT INTO scheduled_reports (id, tenant_id, name, report_type, frequency, recipients, "
                    "parameters, next_run_at, is_active) VALUES (:id, :tenant, :name, :type, :frequency, "
                    ":recipients, CAST(:parameters AS jsonb), :next_run_at, false)"
                ),
                {"id": report_id, "tenant": tenant, "name": report.name, "type": report.report_type,
                 "frequency": report.frequency, "recipients": list(report.recipients),
                 "parameters": json.dumps(report.parameters.as_json()), "next_run_at": due},
            )
            ids.append(report_id)
    return ids


def resume_demo_reports(url: str, report_ids: list[str]) -> None:
    """Make the demo reports active as they are: due now, so the reports sensor's next tick
    requests their deliveries."""
    with db.engine_for(url).begin() as conn:
        conn.execute(
            sa.text("UPDATE scheduled_reports SET is_active = true, updated_at = now() WHERE id = ANY(:ids)"),
            {"ids": report_ids},
        )


# Where `dev` remembers the first day of the demo it loaded: a setting of the database itself
# (ALTER DATABASE ... SET), so that it stays with the data whatever the URL or ANALYTICS_HOME.
DEMO_FIRST_DAY_SETTING = "analytics.demo_first_day"


def partitions_start_env(url: str, loaded=None) -> dict[str, str]:
    """`ANALYTICS_START_DATE` for the processes of `dev`, so that the aggregates' partitions start
    where the data does (docs/deployment.md): the first day of the demo just loaded (`loaded`, its
    options; remembered for the later starts), else that of the demo loaded before, else of the
    events in the database. Nothing when the environment sets it already, or without events (the
    default start then)."""
    if os.environ.get("ANALYTICS_START_DATE"):
        return {}
    if loaded is not None:
        remember_demo_first_day(url, loaded.start)
        first = loaded.start
    else:
        first = demo_first_day(url) or first_event_day(url)
    return {"ANALYTICS_START_DATE": first.isoformat()} if first else {}


def remember_demo_first_day(url: str, day: dt.date) -> bool:
    """Keep `day` as the demo's first day in the database's settings; False where the role may
    not alter the database (the later starts then go by the first event)."""
    with db.engine_for(url).connect() as conn:
        name = conn.execute(sa.text("SELECT current_database()")).scalar()
        quoted = conn.dialect.identifier_preparer.quote(name)
        try:
            conn.execute(sa.text(f"ALTER DATABASE {quoted} SET {DEMO_FIRST_DAY_SETTING} = '{day.isoformat()}'"))
            conn.commit()
        except sa.exc.DBAPIError:
            conn.rollback()
            return False
    return True


def demo_first_day(url: str) -> dt.date | None:
    """The first day of the demo loaded into this database, if `dev` loaded one."""
    with db.engine_for(url).connect() as conn:
        raw = conn.execute(sa.text("SELECT current_setting(:name, true)"), {"name": DEMO_FIRST_DAY_SETTING}).scalar()
    try:
        return dt.date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


def first_event_day(url: str) -> dt.date | None:
    """The UTC day of the earliest event, None without events. Per organization, so that each
    minimum is read from the end of the (tenant_id, timestamp) index."""
    with db.engine_for(url).connect() as conn:
        first = conn.execute(sa.text(
            'SELECT min(e.first) FROM organizations AS o CROSS JOIN LATERAL '
            '(SELECT min("timestamp") AS first FROM analytics_events WHERE tenant_id = o.id) AS e'
        )).scalar()
    return first.date() if first is not None else None


@dataclass(frozen=True)
class DemoBackfill:
    backfill_id: str
    targets: dict  # AssetKey -> the partition keys requested, or None for an unpartitioned asset

    @property
    def partitions(self) -> int:
        return sum(len(keys) if keys is not None else 1 for keys in self.targets.values())


def submit_demo_backfill(instance, first_day: dt.date) -> DemoBackfill:
    """Add to `instance` one asset backfill of every partitioned asset from `first_day` (or the
    first partition, if later) to the last partition. With single-run backfill policies the
    daily aggregates are one run and the monthly one another.

    The aggregates bring the state they read up to date themselves, so the backfill does not
    wait for the state assets: `materialize_states` runs those beside it. The backfill is added
    before the daemon starts, whose first backfill iteration then launches it.
    """
    import dagster as dg
    from dagster._core.definitions.selector import (
        PartitionRangeSelector,
        PartitionsByAssetSelector,
        PartitionsSelector,
    )
    from dagster._core.execution.backfill import PartitionBackfill
    from dagster._core.utils import make_new_backfill_id

    from ..definitions import defs

    graph = defs.resolve_asset_graph()
    partitioned = sorted(k for k in graph.materializable_asset_keys if graph.get(k).partitions_def)
    selectors, targets = [], {}
    for key in partitioned:
        partitions_def = graph.get(key).partitions_def
        chosen = [
            k for k in partitions_def.get_partition_keys()
            if partitions_def.time_window_for_partition_key(k).end.date() > first_day
        ]
        selectors.append(PartitionsByAssetSelector(
            asset_key=key,
            partitions=PartitionsSelector(ranges=[PartitionRangeSelector(start=chosen[0], end=chosen[-1])]),
        ))
        targets[key] = chosen
    upstream = dg.AssetSelection.assets(*partitioned).upstream().resolve(graph)
    for key in sorted(upstream - set(partitioned)):
        if key in graph.materializable_asset_keys:
            targets[key] = None
    backfill = PartitionBackfill.from_partitions_by_assets(
        backfill_id=make_new_backfill_id(),
        asset_graph=graph,
        backfill_timestamp=time.time(),
        tags={},
        dynamic_partitions_store=instance,
        partitions_by_assets=selectors,
        title=BACKFILL_TITLE,
        description="Launched by `analytics-pipeline dev` after loading the demo data.",
        run_config=None,
    )
    instance.add_backfill(backfill)
    return DemoBackfill(backfill.backfill_id, targets)


def materialize_states(instance, backfill: DemoBackfill) -> bool:
    """One run, in this process, of the unpartitioned assets upstream of the backfill's (the
    state the aggregates absorb), so that every asset of the lineage has a materialization."""
    import dagster as dg

    from ..core.resources import AnalyticsDatabase
    from ..definitions import defs

    keys = [key for key, partitions in backfill.targets.items() if partitions is None]
    assets = [a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition) and set(a.keys) & set(keys)]
    result = dg.materialize(
        assets, instance=instance, resources={"database": AnalyticsDatabase()}, selection=keys,
        tags={"analytics/demo": "state"}, raise_on_error=False,
    )
    return result.success


def missing_partitions(instance, backfill: DemoBackfill) -> int:
    """How many of the backfill's partitions have no materialization yet."""
    missing = 0
    for key, partition_keys in backfill.targets.items():
        if partition_keys is None:
            missing += instance.get_latest_materialization_event(key) is None
        else:
            missing += len(set(partition_keys) - instance.get_materialized_partitions(key))
    return missing


def wait_for_backfill(
    instance, backfill: DemoBackfill, stop: Callable[[], bool], poll_seconds: float = 1.0
) -> bool:
    """Wait until every partition of the backfill is materialized (True), or until the
    backfill has ended without that, or `stop()` says so (False)."""
    from dagster._core.execution.backfill import BulkActionStatus

    while not stop():
        if missing_partitions(instance, backfill) == 0:
            return True
        if instance.get_backfill(backfill.backfill_id).status != BulkActionStatus.REQUESTED:
            # Ended: its last materializations may have landed since the count above.
            return missing_partitions(instance, backfill) == 0
        time.sleep(poll_seconds)
    return False
