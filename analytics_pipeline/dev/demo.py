"""The first start of `analytics-pipeline dev` on an empty database: after the demo data set is
loaded, one backfill of every aggregate (and the state it absorbs) over the demo's range, which
the user watches in the UI, and one demo scheduled report per frequency, delivered to the outbox
once the aggregates they read are there. The aggregates' partitions start on the demo's first
day, so that none shows as missing once the backfill is done. A first start that did not get
there (stopped, or its backfill failed) is finished by the next start: the backfill of the
partitions no run that succeeded has made (`partitions_to_make`).

The backfill is launched through Dagster's GraphQL API (the UI's) before Dagster starts, its
progress read from the instance's public methods and the webserver. Dagster is imported inside the
functions: the rest of the command line does not need it.
"""

from __future__ import annotations

import bisect
import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from ..core import db
from ..reports.schedule import anchor_for, latest_due, next_occurrence
from ..reports.store import insert_report
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
    """Add the demo reports, paused, to the first demo organization; returns their ids. Those
    added by a first start that was interrupted are not added again: their ids are returned.

    Each one's next_run_at is its latest occurrence before now, so it is due the moment it is
    resumed (`resume_demo_reports`): its first delivery then reports on aggregates that exist.
    """
    now = now or utc_now()
    ids = []
    with db.engine_for(url).begin() as conn:
        tenant = conn.execute(sa.text("SELECT min(id) FROM organizations")).scalar()
        if tenant is None:
            return []
        added = conn.execute(
            sa.text("SELECT id FROM scheduled_reports WHERE tenant_id = :tenant AND name = ANY(:names) "
                    "AND :recipient = ANY(recipients) ORDER BY created_at, id"),
            {"tenant": tenant, "names": [name for _, _, name in DEMO_REPORTS], "recipient": DEMO_RECIPIENT},
        ).scalars().all()
        if added:  # all or none: they are added in one transaction
            return list(added)
        for frequency, report_type, name in DEMO_REPORTS:
            parameters = {"send_time": "08:00"}
            parameters |= {"weekly": {"day_of_week": 1}, "monthly": {"day_of_month": 1}}.get(frequency, {})
            report = validate_report(name=name, report_type=report_type, frequency=frequency,
                                     recipients=[DEMO_RECIPIENT], parameters=parameters)
            anchor = anchor_for(frequency, report.parameters, now)
            # An occurrence a little over a month back, then the latest one up to now.
            due, _ = latest_due(next_occurrence(now - dt.timedelta(days=40), anchor), now, anchor)
            report_id = insert_report(conn, tenant, report, due, active=False)
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
    with db.engine_for(url).connect() as conn, conn.begin():
        return _set_database(conn, {DEMO_FIRST_DAY_SETTING: day.isoformat()})


# Where `dev` remembers that the demo's first start has yet to be made: set in the transaction
# that loads the demo, reset once every partition of its backfill and every state is materialized
# by a run that succeeded. A start interrupted in between (while the indexes are built, the
# backfill is launched or runs) leaves it set, and the next start finishes the first start instead
# of taking the events it finds as a demo already under way.
DEMO_FIRST_START_SETTING = "analytics.demo_first_start"
FIRST_START_PENDING = "pending"


def mark_first_start_pending(conn, first_day: dt.date) -> bool:
    """In the transaction that loads the demo: its first day, and its first start yet to be made.
    False where the role may not alter the database (an interrupted first start then is not
    finished by the next one)."""
    return _set_database(conn, {DEMO_FIRST_DAY_SETTING: first_day.isoformat(),
                                DEMO_FIRST_START_SETTING: FIRST_START_PENDING})


def pending_first_start(url: str) -> dt.date | None:
    """The first day of the demo loaded into this database whose first start is yet to be made
    (its backfill not done), None if there is none. Read from the catalog, not from the
    session's settings, which a session takes when it opens."""
    with db.engine_for(url).connect() as conn:
        entries = conn.execute(sa.text(
            "SELECT unnest(s.setconfig) FROM pg_db_role_setting AS s JOIN pg_database AS d ON d.oid = s.setdatabase "
            "WHERE d.datname = current_database() AND s.setrole = 0"
        )).scalars().all()
    settings = dict(entry.partition("=")[::2] for entry in entries)
    if settings.get(DEMO_FIRST_START_SETTING) != FIRST_START_PENDING:
        return None
    try:
        return dt.date.fromisoformat(settings.get(DEMO_FIRST_DAY_SETTING, ""))
    except ValueError:
        return None


def first_start_made(url: str) -> None:
    """The demo's first start is made, every partition of its backfill materialized: the next
    start is an ordinary one."""
    with db.engine_for(url).connect() as conn, conn.begin():
        _set_database(conn, {DEMO_FIRST_START_SETTING: None})


def _set_database(conn, settings: dict[str, str | None]) -> bool:
    """ALTER DATABASE ... SET (or RESET, for None) each setting, in a savepoint of the
    connection's transaction; False, with nothing set, where the role may not."""
    name = conn.execute(sa.text("SELECT current_database()")).scalar()
    quoted = conn.dialect.identifier_preparer.quote(name)
    try:
        with conn.begin_nested():
            for setting, value in settings.items():
                change = f"RESET {setting}" if value is None else f"SET {setting} = '{value}'"
                conn.execute(sa.text(f"ALTER DATABASE {quoted} {change}"))
    except sa.exc.DBAPIError:
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
    """What the first start materializes: each partitioned asset's partitions from the demo's first
    day (one backfill), and once the unpartitioned assets upstream of them (the state run)."""

    partitions: dict  # AssetKey -> (its PartitionsDefinition, the partition keys requested)
    states: list  # AssetKeys

    @property
    def size(self) -> int:
        return sum(len(keys) for _, keys in self.partitions.values()) + len(self.states)

    @property
    def assets(self) -> int:
        return len(self.partitions) + len(self.states)


def demo_backfill(first_day: dt.date) -> DemoBackfill:
    """Every partitioned asset from the partition holding `first_day` (or its first partition, if
    later) to its last, and the unpartitioned assets upstream of them. With single-run backfill
    policies the daily aggregates are one run and the monthly one another.

    The aggregates bring the state they read up to date themselves, so the backfill does not
    wait for the state assets: `materialize_states` runs those beside it.
    """
    import dagster as dg

    from ..definitions import defs

    specs = {spec.key: spec for spec in defs.resolve_all_asset_specs()}
    materializable = {key for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition) for key in a.keys}
    partitions = {}
    for key in sorted(k for k in materializable if specs[k].partitions_def):
        partitions_def = specs[key].partitions_def
        keys = partitions_def.get_partition_keys()
        # The project's time partitions are keyed by their first day (aggregation/partitions.py).
        holding = bisect.bisect_right([dt.date.fromisoformat(k) for k in keys], first_day) - 1
        partitions[key] = (partitions_def, keys[max(holding, 0):])
    upstream, todo = set(), list(partitions)
    while todo:
        spec = specs.get(todo.pop())
        for dep in spec.deps if spec else ():
            if dep.asset_key not in upstream:
                upstream.add(dep.asset_key)
                todo.append(dep.asset_key)
    states = sorted(k for k in upstream & materializable if k not in partitions)
    return DemoBackfill(partitions, states)


# Dagster's GraphQL API, the one the UI uses: Dagster 1.13 has no command and its Python client
# (dagster_graphql.DagsterGraphQLClient) no method for a partition backfill.
LAUNCH_BACKFILL = """mutation ($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
    __typename ... on LaunchBackfillSuccess { backfillId } ... on Error { message } } }"""
BACKFILL_STATUS = """query ($id: String!) { partitionBackfillOrError(backfillId: $id) {
    __typename ... on PartitionBackfill { status } ... on Error { message } } }"""
# The backfills in progress, and the UI's Cancel of one: for an asset backfill, CANCELING, after
# which the daemon launches no more of its runs and marks it CANCELED once they have ended.
BACKFILLS_REQUESTED = """{ partitionBackfillsOrError(status: REQUESTED) {
    __typename ... on PartitionBackfills { results { id title } } ... on Error { message } } }"""
CANCEL_BACKFILL = """mutation ($id: String!) { cancelPartitionBackfill(backfillId: $id) {
    __typename ... on CancelBackfillSuccess { backfillId } ... on Error { message } } }"""
# dagster-graphql, the command line that executes a GraphQL document against the instance and a
# workspace without a webserver.
DAGSTER_GRAPHQL = "import sys; from dagster_graphql.cli import main; sys.exit(main())"


def graphql(document: str, **variables) -> dict:
    """The data of `document` executed by dagster-graphql on the instance of DAGSTER_HOME and the
    project's workspace, whose code location it loads in a code server of its own (a few
    seconds): before `dagster dev` starts, so that its daemon's first backfill iteration finds
    what the document launches."""
    from ..core.settings import PROJECT_DIR

    command = [sys.executable, "-c", DAGSTER_GRAPHQL, "-w", "workspace.yaml", "-t", document,
               "-v", json.dumps(variables)]
    # A process group of its own, its code server's too: an interrupt here stops both, which would
    # otherwise leave the code server behind for a minute.
    with subprocess.Popen(command, cwd=PROJECT_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True) as cli:
        try:
            out, err = cli.communicate(timeout=300)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(cli.pid, signal.SIGINT)
                try:
                    cli.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
                os.killpg(cli.pid, signal.SIGKILL)
            raise
    answers = [line for line in out.splitlines() if line.startswith("{")]
    if cli.returncode != 0 or not answers:
        raise RuntimeError(f"dagster-graphql exited with {cli.returncode}: {err.strip()[-2000:]}")
    return _data(json.loads(answers[-1]))


def _data(body: dict) -> dict:
    if body.get("errors"):
        raise RuntimeError("; ".join(error.get("message", str(error)) for error in body["errors"]))
    return body["data"]


def launch_backfill(backfill: DemoBackfill) -> str:
    """Launch the asset backfill of `backfill.partitions` as the UI's "Materialize" over a range
    does (`launchPartitionBackfill`), each asset's keys as the ranges of consecutive partitions
    they make up (one, unless some are left out: `partitions_to_make`); returns its id."""
    params = {
        "partitionsByAssets": [
            {"assetKey": {"path": list(key.path)}, "partitions": {"ranges": _ranges(partitions_def, keys)}}
            for key, (partitions_def, keys) in backfill.partitions.items()
        ],
        "title": BACKFILL_TITLE,
        "description": "Launched by `analytics-pipeline dev` after loading the demo data.",
    }
    launched = graphql(LAUNCH_BACKFILL, params=params)["launchPartitionBackfill"]
    if launched["__typename"] != "LaunchBackfillSuccess":
        raise RuntimeError(f"{launched['__typename']}: {launched.get('message')}")
    return launched["backfillId"]


def _ranges(partitions_def, keys: list[str]) -> list[dict]:
    """`keys` as the ranges of consecutive partitions of `partitions_def` they make up."""
    position = {key: i for i, key in enumerate(partitions_def.get_partition_keys())}
    ranges: list[dict] = []
    last = None
    for key in sorted(keys, key=position.__getitem__):
        if last is not None and position[key] == position[last] + 1:
            ranges[-1]["end"] = key
        else:
            ranges.append({"start": key, "end": key})
        last = key
    return ranges


def requested_demo_backfill() -> str | None:
    """The id of a demo backfill still in progress (REQUESTED: a start interrupted just after
    launching it, or stopped while the webserver could not cancel it), which the daemon goes on
    with; None if there is none. A cancelled or failed one launches no more runs."""
    listed = graphql(BACKFILLS_REQUESTED)["partitionBackfillsOrError"]
    if "results" not in listed:
        raise RuntimeError(f"{listed['__typename']}: {listed.get('message')}")
    return next((b["id"] for b in listed["results"] if b["title"] == BACKFILL_TITLE), None)


class DagsterUI:
    """The GraphQL API of the Dagster webserver at `url` (http://host:port)."""

    def __init__(self, url: str, timeout: float = 60) -> None:
        self.url = url
        self.timeout = timeout

    def query(self, document: str, **variables) -> dict:
        import requests

        response = requests.post(
            f"{self.url}/graphql", json={"query": document, "variables": variables}, timeout=self.timeout
        )
        response.raise_for_status()
        return _data(response.json())

    def backfill_status(self, backfill_id: str) -> str | None:
        """REQUESTED while it runs, then COMPLETED_SUCCESS, COMPLETED_FAILED, FAILED, CANCELED,
        ...; None while the webserver does not answer yet."""
        import requests

        try:
            backfill = self.query(BACKFILL_STATUS, id=backfill_id)["partitionBackfillOrError"]
        except requests.ConnectionError:
            return None
        if backfill["__typename"] != "PartitionBackfill":
            raise RuntimeError(f"{backfill['__typename']}: {backfill.get('message')}")
        return backfill["status"]


def materialize_states(instance, backfill: DemoBackfill) -> bool:
    """One run, in this process, of the unpartitioned assets upstream of the backfill's (the
    state the aggregates absorb), so that every asset of the lineage has a materialization. Its
    log goes to the terminal from INFO up, as the daemon's does."""
    import dagster as dg

    from ..core.resources import AnalyticsDatabase
    from ..definitions import defs

    keys = set(backfill.states)
    assets = [a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition) and set(a.keys) & keys]
    result = dg.materialize(
        assets, instance=instance, resources={"database": AnalyticsDatabase()}, selection=sorted(keys),
        tags={"analytics/demo": "state"}, raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
    )
    return result.success


def missing_partitions(instance, backfill: DemoBackfill) -> int:
    """How many of the backfill's partitions, and of the states, have no materialization yet (as
    the UI counts them: by any run, also one that was cancelled after its step)."""
    import dagster as dg

    missing = sum(instance.get_latest_materialization_event(key) is None for key in backfill.states)
    for key, (partitions_def, keys) in backfill.partitions.items():
        statuses = instance.get_status_by_partition(key, keys, partitions_def) or {}
        missing += sum(statuses.get(k) != dg.AssetPartitionStatus.MATERIALIZED for k in keys)
    return missing


MATERIALIZATIONS_PAGE = 1000


def partitions_to_make(instance, backfill: DemoBackfill) -> DemoBackfill:
    """The backfill's partitions, and states, that no run that succeeded has materialized: what
    the demo's first start has yet to make after an interruption (its runs cancelled, one of them
    perhaps after a step that materialized some) or a failure."""
    import dagster as dg

    def made_by(key) -> dict[str | None, set[str]]:  # partition key (None: unpartitioned): run ids
        found: dict[str | None, set[str]] = {}
        cursor = None
        while True:
            page = instance.fetch_materializations(key, limit=MATERIALIZATIONS_PAGE, cursor=cursor)
            for record in page.records:
                found.setdefault(record.partition_key, set()).add(record.run_id)
            if not page.has_more:
                return found
            cursor = page.cursor

    made = {key: made_by(key) for key in [*backfill.partitions, *backfill.states]}
    run_ids = sorted({run_id for by_partition in made.values() for ids in by_partition.values() for run_id in ids})
    succeeded = {run.run_id for run in instance.get_runs(
        dg.RunsFilter(run_ids=run_ids, statuses=[dg.DagsterRunStatus.SUCCESS]))} if run_ids else set()

    def done(key, partition) -> bool:
        return bool(made[key].get(partition, set()) & succeeded)

    partitions = {}
    for key, (partitions_def, keys) in backfill.partitions.items():
        left = [k for k in keys if not done(key, k)]
        if left:
            partitions[key] = (partitions_def, left)
    return DemoBackfill(partitions, [key for key in backfill.states if not done(key, None)])


def wait_for_backfill(
    instance, ui: DagsterUI, backfill_id: str | None, backfill: DemoBackfill, stop: Callable[[], bool],
    poll_seconds: float = 1.0,
) -> bool:
    """Wait until every partition of the backfill and every state is materialized by a run that
    succeeded (True), or until the backfill `backfill_id` (None: none was launched) has ended
    without that, or `stop()` says so (False)."""

    def made() -> bool:  # the cheap count first, as the UI's; then by which runs
        return missing_partitions(instance, backfill) == 0 and partitions_to_make(instance, backfill).size == 0

    while not stop():
        if made():
            return True
        if backfill_id is None or ui.backfill_status(backfill_id) not in ("REQUESTED", None):
            # Ended: its last runs may have succeeded since the count above.
            return made()
        time.sleep(poll_seconds)
    return False
