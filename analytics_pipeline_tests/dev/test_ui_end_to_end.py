"""The pipeline as a data team meets it: `dagster dev -w workspace.yaml` (webserver, daemon and
code server) on the production instance settings (deploy/dagster.yaml, storage in a database of
its own), driven only through the webserver's GraphQL API, which is what the UI uses.

It reads what the code location defines and exercises all of it: the platform tables are always
there; the aggregates, their schedules and sensors and the report deliveries are checked as soon
as they exist, and a month of every daily-partitioned aggregate is backfilled and its rows
compared with figures worked out by hand. Whatever it cannot exercise yet it names in a warning,
so nothing is skipped silently.
"""

import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import psutil
import pytest
import requests
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from analytics_pipeline.alerts import ASSET_CHECK_FAILURE_ALERT_SENSOR, RUN_FAILURE_ALERT_SENSOR
from analytics_pipeline.core import db
from analytics_pipeline.core.schema import analytics_events, organizations, users
from analytics_pipeline.core.settings import PROJECT_DIR

from ..helpers import free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

PLATFORM = ("organizations", "users", "analytics_events")
AGGREGATES = ("revenue_aggregates", "tournament_aggregates", "user_cohorts")
# The cadences the issues ask for; a schedule or sensor found under these names must keep them.
SCHEDULE_CRON = {"revenue_aggregates": "5 * * * *", "tournament_aggregates": "5 * * * *", "user_cohorts": "30 2 * * *"}
SENSOR_INTERVAL_SECONDS = {
    RUN_FAILURE_ALERT_SENSOR: 30,
    ASSET_CHECK_FAILURE_ALERT_SENSOR: 30,
    "scheduled_reports_sensor": 15 * 60,
}
EXPECTED_SENSORS = (
    "scheduled_reports_sensor",
    "retention_cleanup_sensor",
    RUN_FAILURE_ALERT_SENSOR,
    ASSET_CHECK_FAILURE_ALERT_SENSOR,
)
TICK_SECONDS = 75
POOL = "analytics_db"
STARTUP_SECONDS = 120
BACKFILL_SECONDS = 150


# --- The month to backfill and its events, with the expected figures worked out by hand ----------

TODAY = dt.datetime.now(dt.UTC).date()
MONTH_END = TODAY.replace(day=1)  # exclusive: the backfilled month is the last complete one
MONTH = (MONTH_END - dt.timedelta(days=1)).replace(day=1)
START_DATE = (MONTH - dt.timedelta(days=1)).replace(day=1)  # partitions begin a month earlier
D1, D2, LAST = MONTH + dt.timedelta(days=2), MONTH + dt.timedelta(days=16), MONTH_END - dt.timedelta(days=1)


def _at(day: dt.date, hhmmss: str) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.fromisoformat(hhmmss))


EVENTS = [
    # (tenant, user, type, data, timestamp)
    ("org_a", "u_a1", "payment_completed", {"payment_id": "p1", "amount": 30}, _at(D1, "10:00:00")),
    ("org_a", "u_a2", "payment_completed", {"payment_id": "p2", "amount": "12.50"}, _at(D1, "15:30:00")),
    ("org_a", "u_a2", "payment_failed", {"payment_id": "p3", "amount": 30, "reason": "card_declined"}, _at(D1, "16:00:00")),
    ("org_a", "u_a1", "payment_completed", {"payment_id": "p4", "amount": 19.99}, _at(D2, "09:00:00")),
    ("org_a", "u_a1", "payment_refunded", {"payment_id": "p1", "amount": 5}, _at(D2, "23:59:59")),
    ("org_a", "u_a2", "payment_completed", {"payment_id": "p5", "amount": 7.01}, _at(LAST, "23:59:59")),
    ("org_b", "u_b1", "payment_completed", {"payment_id": "p6", "amount": 100}, _at(D2, "12:00:00")),
    # The first instant after the month: outside the backfill, so in none of its rows.
    ("org_a", "u_a1", "payment_completed", {"payment_id": "p7", "amount": 50}, _at(MONTH_END, "00:00:00")),
    ("org_a", None, "tournament_created", {"tournament_id": "t1", "format": "swiss"}, _at(D1, "08:00:00")),
    ("org_a", "u_a1", "player_registered", {"tournament_id": "t1"}, _at(D1, "08:10:00")),
    ("org_a", "u_a2", "player_registered", {"tournament_id": "t1"}, _at(D1, "08:20:00")),
    ("org_a", None, "tournament_started", {"tournament_id": "t1"}, _at(D1, "09:00:00")),
    ("org_a", None, "tournament_completed", {"tournament_id": "t1", "duration_minutes": 90}, _at(D2, "10:30:00")),
    ("org_a", None, "tournament_created", {"tournament_id": "t2", "format": "round_robin"}, _at(D2, "11:00:00")),
    # org_c's one customer, from ads: pro at 30 a month, upgraded to team at 50 (a plan change),
    # cancelled on the month's last day, so that no MRR carries past the backfilled month.
    ("org_c", "u_c1", "user_signup", {"source": "ads"}, _at(D1, "07:00:00")),
    ("org_c", "u_c1", "subscription_started",
     {"subscription_id": "s1", "plan_id": "pro", "amount": 30, "interval": "month"}, _at(D1, "09:00:00")),
    ("org_c", "u_c1", "subscription_changed",
     {"subscription_id": "s1", "plan_id": "team", "amount": 50, "interval": "month"}, _at(D2, "09:00:00")),
    ("org_c", "u_c1", "subscription_cancelled", {"subscription_id": "s1"}, _at(LAST, "12:00:00")),
]

# revenue_aggregates day rows of the month: (total_revenue, payment_count, payment_success_count,
# refund_count, refund_amount). A day has a row only with a payment or refund in it.
REVENUE_DAYS = {
    ("org_a", D1): (Decimal("42.50"), 3, 2, 0, Decimal("0")),
    ("org_a", D2): (Decimal("19.99"), 1, 1, 1, Decimal("5.00")),
    ("org_a", LAST): (Decimal("7.01"), 1, 1, 0, Decimal("0")),
    ("org_b", D2): (Decimal("100.00"), 1, 1, 0, Decimal("0")),
}
REVENUE_MONTH = {
    "org_a": (Decimal("69.50"), 5, 4, 1, Decimal("5.00")),
    "org_b": (Decimal("100.00"), 1, 1, 0, Decimal("0")),
}
# revenue_segments rows of org_c (docs/metrics.md#segment-movements): (mrr, new_revenue,
# expansion_revenue, churned_revenue, transfer_in_revenue, transfer_out_revenue, active_customers,
# new_customers, churned_customers, transferred_in_customers, transferred_out_customers). The
# upgrade moves pro's 30 to team, which also takes the expansion of 20, and team churns the 50; in
# the interval and source, the customer's movements as they are.
def _segment(mrr=0, new=0, expansion=0, churned=0, t_in=0, t_out=0, active=0, new_c=0, churned_c=0, in_c=0, out_c=0):
    return (*(Decimal(v).quantize(Decimal("0.01")) for v in (mrr, new, expansion, churned, t_in, t_out)),
            active, new_c, churned_c, in_c, out_c)


SEGMENT_ROWS = {
    **{("day", D1, dimension, value): _segment(mrr=30, new=30, active=1, new_c=1)
       for dimension, value in (("plan", "pro"), ("interval", "month"), ("source", "ads"))},
    ("day", D2, "plan", "pro"): _segment(t_out=30, out_c=1),
    ("day", D2, "plan", "team"): _segment(mrr=50, expansion=20, t_in=30, active=1, in_c=1),
    ("day", D2, "interval", "month"): _segment(mrr=50, expansion=20, active=1),
    ("day", D2, "source", "ads"): _segment(mrr=50, expansion=20, active=1),
    ("month", MONTH, "plan", "pro"): _segment(new=30, t_out=30, new_c=1, out_c=1),
    ("month", MONTH, "plan", "team"): _segment(expansion=20, churned=50, t_in=30, churned_c=1, in_c=1),
    ("month", MONTH, "interval", "month"): _segment(new=30, expansion=20, churned=50, new_c=1, churned_c=1),
    ("month", MONTH, "source", "ads"): _segment(new=30, expansion=20, churned=50, new_c=1, churned_c=1),
}
# tournament_aggregates day rows: (tournament_count, completed_count, total_players)
TOURNAMENT_DAYS = {("org_a", D1): (1, 1, 2), ("org_a", D2): (1, 0, 0)}


def _load_events(url: str) -> None:
    with db.engine_for(url).begin() as conn:
        conn.execute(
            organizations.insert(),
            [{"id": "org_a", "name": "Org A"}, {"id": "org_b", "name": "Org B"}, {"id": "org_c", "name": "Org C"}],
        )
        conn.execute(
            users.insert(),
            [{"id": "u_a1", "tenant_id": "org_a"}, {"id": "u_a2", "tenant_id": "org_a"}, {"id": "u_b1", "tenant_id": "org_b"},
             {"id": "u_c1", "tenant_id": "org_c"}],
        )
        conn.execute(
            analytics_events.insert(),
            [
                {"id": f"e{i}", "tenant_id": t, "user_id": u, "event_type": kind, "event_data": data, "timestamp": ts}
                for i, (t, u, kind, data, ts) in enumerate(EVENTS)
            ],
        )


# --- dagster dev and its GraphQL API ---------------------------------------------------------------


@dataclass
class DagsterDev:
    process: subprocess.Popen
    url: str
    log_path: Path
    shutdown_clean: bool | None = None
    survivors: list[str] = field(default_factory=list)

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def query(self, query: str, **variables) -> dict:
        response = requests.post(f"{self.url}/graphql", json={"query": query, "variables": variables}, timeout=60)
        response.raise_for_status()
        body = response.json()
        assert not body.get("errors"), f"GraphQL errors: {json.dumps(body['errors'], indent=1)}"
        return body["data"]


def _group_members(pgid: int) -> list[str]:
    """Live processes of the group. Zombies do not count: an exited child whose parent ended
    first is reparented to PID 1, which in a container may never reap it."""
    members = []
    for proc in psutil.process_iter(["pid", "status", "cmdline"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                members.append(f"{proc.pid}: {' '.join(proc.info['cmdline'] or [])[:160]}")
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return members


def _group_alive(pgid: int) -> bool:
    return bool(_group_members(pgid))


@contextlib.contextmanager
def dagster_dev(env: dict[str, str], log_path: Path) -> Iterator[DagsterDev]:
    """Run `dagster dev` in a process group of its own; on exit interrupt the whole group as
    Ctrl-C in a terminal does, and record whether every process ended by itself."""
    port = free_port()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "dagster", "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
            cwd=PROJECT_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # A shell running the suite in the background starts it with SIGINT ignored, and
            # children inherit that: dagster dev would then ignore the interrupt below.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        server = DagsterDev(process, f"http://127.0.0.1:{port}", log_path)
        try:
            yield server
        finally:
            os.killpg(process.pid, signal.SIGINT)
            deadline = time.monotonic() + 45
            while _group_alive(process.pid) and time.monotonic() < deadline:
                process.poll()
                time.sleep(0.5)
            server.survivors = _group_members(process.pid)
            server.shutdown_clean = not server.survivors
            if not server.shutdown_clean:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


WORKSPACE = """
{ workspaceOrError { __typename ... on Workspace { locationEntries { name loadStatus
    locationOrLoadError { __typename ... on PythonError { message stack } } } } } }
"""


def _wait_until_loaded(server: DagsterDev) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        assert server.process.poll() is None, f"dagster dev exited early:\n{server.log_tail()}"
        with contextlib.suppress(requests.ConnectionError):
            entries = server.query(WORKSPACE)["workspaceOrError"]["locationEntries"]
            if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                for entry in entries:
                    error = entry["locationOrLoadError"]
                    assert error["__typename"] == "RepositoryLocation", (
                        f"code location {entry['name']} failed to load: {error.get('message')}\n{''.join(error.get('stack') or [])}"
                    )
                return
        time.sleep(1)
    raise AssertionError(f"the webserver did not load the code location in {STARTUP_SECONDS}s:\n{server.log_tail()}")


ASSET_GRAPH = """
{ assetNodes { assetKey { path } dependencyKeys { path } groupName isMaterializable isAutoCreatedStub pools
    partitionDefinition { type description fmt }
    targetingInstigators { __typename ... on Schedule { name cronSchedule } ... on Sensor { name minIntervalSeconds } } } }
"""

SENSOR_TICKS = """
{ repositoriesOrError { __typename ... on RepositoryConnection { nodes {
    sensors { name sensorState { ticks(limit: 20) { status skipReason error { message } } } } } } } }
"""

INSTIGATORS = """
{ repositoriesOrError { __typename ... on RepositoryConnection { nodes { name
    schedules { name cronSchedule executionTimezone scheduleState { status } }
    sensors { name minIntervalSeconds sensorType sensorState { status } } } } } }
"""

LAUNCH_BACKFILL = """
mutation ($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
    __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message stack }
    ... on InvalidSubsetError { message } ... on UnauthorizedError { message } } }
"""

BACKFILL = """
query ($id: String!) { partitionBackfillOrError(backfillId: $id) { __typename
    ... on PartitionBackfill { status numPartitions runs(limit: 100) { runId status } error { message } } } }
"""

RUN_ERRORS = """
query ($id: ID!) { runOrError(runId: $id) { ... on Run { status eventConnection(afterCursor: null) { events {
    __typename ... on ExecutionStepFailureEvent { stepKey error { message causes { message } } }
    ... on RunFailureEvent { message } } } } } }
"""

PARTITION_STATUS = """
query ($key: AssetKeyInput!) { assetNodeOrError(assetKey: $key) { ... on AssetNode {
    assetPartitionStatuses { __typename ... on TimePartitionStatuses { ranges { startKey endKey status } } } } } }
"""

DAEMONS = "{ instance { daemonHealth { allDaemonStatuses { daemonType required healthy } } } }"


def _name(node: dict) -> str:
    return "/".join(node["assetKey"]["path"])


def _upstream(graph: dict[str, set[str]], key: str) -> set[str]:
    seen, todo = set(), list(graph[key])
    while todo:
        parent = todo.pop()
        if parent not in seen:
            seen.add(parent)
            todo.extend(graph.get(parent, ()))
    return seen


def _is_daily(node: dict) -> bool:
    partitions = node["partitionDefinition"]
    return bool(partitions) and partitions["type"] == "TIME_WINDOW" and partitions["description"].startswith("Daily")


def _run_failures(server: DagsterDev, run_ids: list[str]) -> str:
    lines = []
    for run_id in run_ids:
        run = server.query(RUN_ERRORS, id=run_id)["runOrError"]
        for event in run.get("eventConnection", {}).get("events", []):
            if event["__typename"] == "ExecutionStepFailureEvent":
                error = event["error"]
                causes = "".join(f"\n  caused by {c['message']}" for c in error["causes"])
                lines.append(f"{run_id} {event['stepKey']}: {error['message']}{causes}")
            elif event["__typename"] == "RunFailureEvent":
                lines.append(f"{run_id}: {event['message']}")
    return "\n".join(lines)


# --- The test ------------------------------------------------------------------------------------


def test_ui_end_to_end(db_url, empty_db_url, tmp_path, monkeypatch):
    _load_events(db_url)
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((PROJECT_DIR / "deploy" / "dagster.yaml").read_text())
    storage_url = make_url(empty_db_url).set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SMTP_", "ALERT_", "DAGSTER_"))},
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_URL": storage_url,
        "DATABASE_URL": db_url,
        "ANALYTICS_HOME": str(tmp_path / "analytics"),
        "ANALYTICS_START_DATE": START_DATE.isoformat(),
    }

    with dagster_dev(env, tmp_path / "dagster_dev.log") as server:
        _wait_until_loaded(server)
        nodes = {_name(n): n for n in server.query(ASSET_GRAPH)["assetNodes"]}
        _check_lineage(nodes)
        # A key that is only referenced (a dependency on an asset not defined yet) is a stub.
        nodes = {key: node for key, node in nodes.items() if not node["isAutoCreatedStub"]}
        _check_schedules_and_sensors(server, nodes)
        _backfill_daily_aggregates(server, nodes, db_url)
        _check_daemons(server)
        _check_check_alert_ticks(server)

    assert server.shutdown_clean, (
        f"processes of dagster dev outlived the interrupt: {server.survivors}\n{server.log_tail()}"
    )
    assert server.process.returncode is not None


def _check_lineage(nodes: dict[str, dict]) -> None:
    graph = {key: {"/".join(d["path"]) for d in node["dependencyKeys"]} for key, node in nodes.items()}
    stubs = sorted(key for key, node in nodes.items() if node["isAutoCreatedStub"])
    nodes = {key: node for key, node in nodes.items() if not node["isAutoCreatedStub"]}
    assert set(PLATFORM) <= set(nodes), f"the platform tables must start the lineage, found {sorted(nodes)}"
    assert graph["users"] == {"organizations"}
    assert graph["analytics_events"] == {"organizations", "users"}
    for key in PLATFORM:
        assert not nodes[key]["isMaterializable"], f"{key} is the platform's table, not produced by the pipeline"

    produced = sorted(key for key, node in nodes.items() if node["isMaterializable"])
    for key in produced:
        assert "analytics_events" in _upstream(graph, key), f"{key} is not connected to analytics_events in the lineage"
    for key in (k for k in nodes if k not in PLATFORM and not nodes[k]["isMaterializable"]):
        assert key == "organizations" or "organizations" in _upstream(graph, key), f"external table {key} floats free"

    aggregates = [key for key in AGGREGATES if key in nodes]
    for key in aggregates:
        assert POOL in nodes[key]["pools"], f"{key} must run in the {POOL} pool that deploy/dagster.yaml limits"
    for key in ("revenue_aggregates", "tournament_aggregates"):
        if key in nodes:
            assert _is_daily(nodes[key]), f"{key} must be partitioned by day, has {nodes[key]['partitionDefinition']}"
    if "user_cohorts" in nodes:
        assert nodes["user_cohorts"]["partitionDefinition"]["description"].startswith("Monthly")
    if "report_deliveries" in nodes:
        assert set(aggregates) <= _upstream(graph, "report_deliveries"), "reports must be downstream of the aggregates"
    missing = [key for key in (*AGGREGATES, "report_deliveries") if key not in nodes]
    if missing:
        warnings.warn(f"not in the code location yet, so not exercised through the UI: {', '.join(missing)}")
    if stubs:
        warnings.warn(f"depended on but not defined yet: {', '.join(stubs)}")


def _check_schedules_and_sensors(server: DagsterDev, nodes: dict[str, dict]) -> None:
    repositories = server.query(INSTIGATORS)["repositoriesOrError"]
    assert repositories["__typename"] == "RepositoryConnection"
    schedules = {s["name"]: s for repo in repositories["nodes"] for s in repo["schedules"]}
    sensors = {s["name"]: s for repo in repositories["nodes"] for s in repo["sensors"]}

    alert = sensors[RUN_FAILURE_ALERT_SENSOR]
    assert alert["sensorType"] == "RUN_STATUS"
    assert alert["sensorState"]["status"] == "RUNNING", "failure alerts must be on without anyone switching them on"
    check_alert = sensors[ASSET_CHECK_FAILURE_ALERT_SENSOR]
    assert check_alert["sensorType"] == "STANDARD"
    assert check_alert["sensorState"]["status"] == "RUNNING", "check alerts must be on without anyone switching them on"
    for name, seconds in SENSOR_INTERVAL_SECONDS.items():
        if name in sensors:
            assert sensors[name]["minIntervalSeconds"] == seconds, f"{name} ticks every {sensors[name]['minIntervalSeconds']}s"
    for schedule in schedules.values():
        assert len(schedule["cronSchedule"].split()) == 5, schedule
        assert schedule["executionTimezone"] in (None, "UTC"), f"{schedule['name']} must run on UTC days"
    for key, cron in SCHEDULE_CRON.items():
        if key in nodes:
            crons = {i["cronSchedule"] for i in nodes[key]["targetingInstigators"] if i["__typename"] == "Schedule"}
            assert cron in crons, f"{key} should be scheduled at {cron!r}, the UI shows {sorted(crons)}"
    missing = [name for name in EXPECTED_SENSORS if name not in sensors]
    if missing:
        warnings.warn(f"sensors not defined yet, so not checked through the UI: {', '.join(missing)}")


def _backfill_daily_aggregates(server: DagsterDev, nodes: dict[str, dict], url: str) -> None:
    daily = sorted(key for key, node in nodes.items() if node["isMaterializable"] and _is_daily(node))
    if not daily:
        warnings.warn("no daily-partitioned asset in the code location yet: the month's backfill was not exercised")
        return
    partitions = [(MONTH + dt.timedelta(days=i)).isoformat() for i in range((MONTH_END - MONTH).days)]
    launched = server.query(
        LAUNCH_BACKFILL,
        params={
            "assetSelection": [{"path": key.split("/")} for key in daily],
            "partitionNames": partitions,
            "title": f"end-to-end test: {MONTH:%Y-%m}",
        },
    )["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched

    deadline = time.monotonic() + BACKFILL_SECONDS
    while True:
        backfill = server.query(BACKFILL, id=launched["backfillId"])["partitionBackfillOrError"]
        if backfill["status"] not in ("REQUESTED", "CANCELING", "FAILING"):
            break
        assert time.monotonic() < deadline, f"backfill still {backfill['status']} after {BACKFILL_SECONDS}s:\n{server.log_tail()}"
        time.sleep(2)
    run_ids = [run["runId"] for run in backfill["runs"]]
    assert backfill["status"] in ("COMPLETED", "COMPLETED_SUCCESS"), (
        f"backfill ended {backfill['status']}: {backfill['error']}\n{_run_failures(server, run_ids)}"
    )
    assert run_ids and all(run["status"] == "SUCCESS" for run in backfill["runs"]), backfill["runs"]

    for key in daily:
        statuses = server.query(PARTITION_STATUS, key={"path": key.split("/")})["assetNodeOrError"]["assetPartitionStatuses"]
        materialized = [r for r in statuses["ranges"] if r["status"] == "MATERIALIZED"]
        assert any(r["startKey"] <= partitions[0] and r["endKey"] >= partitions[-1] for r in materialized), (
            f"{key}: the UI does not show the whole month materialized: {statuses['ranges']}"
        )

    with db.engine_for(url).connect() as conn:
        if "revenue_aggregates" in daily:
            _check_revenue_rows(conn)
        if "tournament_aggregates" in daily:
            _check_tournament_rows(conn)
        if "revenue_segments" in daily:
            _check_segment_rows(conn)
    unchecked = [key for key in daily if key not in ("revenue_aggregates", "tournament_aggregates", "revenue_segments")]
    if unchecked:
        warnings.warn(f"backfilled without a check of their rows here: {', '.join(unchecked)}")


def _check_revenue_rows(conn: sa.Connection) -> None:
    figures = "total_revenue, payment_count, payment_success_count, refund_count, refund_amount"
    # The tenants with payments; org_c's MRR rows are checked with its segments.
    days = conn.execute(
        sa.text(
            f"SELECT tenant_id, period_start, {figures} FROM revenue_aggregates "
            "WHERE period_type = 'day' AND period_start >= :start AND period_start < :end AND tenant_id <> 'org_c'"
        ),
        {"start": MONTH, "end": MONTH_END},
    ).all()
    assert {(r[0], r[1]): tuple(r[2:]) for r in days} == REVENUE_DAYS
    months = conn.execute(
        sa.text(
            f"SELECT tenant_id, {figures} FROM revenue_aggregates WHERE period_type = 'month' AND period_start = :start "
            "AND tenant_id <> 'org_c'"
        ),
        {"start": MONTH},
    ).all()
    assert {r[0]: tuple(r[1:]) for r in months} == REVENUE_MONTH
    after = conn.execute(sa.text("SELECT count(*) FROM revenue_aggregates WHERE period_start >= :end"), {"end": MONTH_END})
    assert after.scalar() == 0, "the backfill of one month must not write the days after it"


def _check_segment_rows(conn: sa.Connection) -> None:
    figures = ("mrr, new_revenue, expansion_revenue, churned_revenue, transfer_in_revenue, transfer_out_revenue, "
               "active_customers, new_customers, churned_customers, transferred_in_customers, transferred_out_customers")
    rows = conn.execute(
        sa.text(
            f"SELECT period_type, period_start, dimension, value, {figures} FROM revenue_segments "
            "WHERE tenant_id = 'org_c' AND (period_type, period_start) IN (('day', :d1), ('day', :d2), ('month', :month))"
        ),
        {"d1": D1, "d2": D2, "month": MONTH},
    ).all()
    assert {tuple(r[:4]): tuple(r[4:]) for r in rows} == SEGMENT_ROWS
    # The values add up to revenue_aggregates' month (the identity): 30 new, 20 expansion, 50 churned.
    month = conn.execute(
        sa.text(
            "SELECT mrr, new_revenue, expansion_revenue, churned_revenue, active_customers, new_customers, "
            "churned_customers FROM revenue_aggregates WHERE tenant_id = 'org_c' AND period_type = 'month' "
            "AND period_start = :month"
        ),
        {"month": MONTH},
    ).one()
    assert tuple(month) == (Decimal("0.00"), Decimal("30.00"), Decimal("20.00"), Decimal("50.00"), 0, 1, 1)
    every_day = conn.execute(
        sa.text(
            "SELECT count(DISTINCT period_start) FROM revenue_segments "
            "WHERE tenant_id = 'org_c' AND period_type = 'day' AND period_start < :end"
        ),
        {"end": MONTH_END},
    ).scalar()
    assert every_day == (LAST - D1).days + 1, "a value with MRR has a row on every day from its start to its churn"


def _check_tournament_rows(conn: sa.Connection) -> None:
    rows = conn.execute(
        sa.text(
            "SELECT tenant_id, period_start, tournament_count, completed_count, total_players FROM tournament_aggregates "
            "WHERE period_type = 'day' AND period_start IN (:d1, :d2)"
        ),
        {"d1": D1, "d2": D2},
    ).all()
    assert {(r[0], r[1]): tuple(r[2:]) for r in rows} == TOURNAMENT_DAYS


def _check_check_alert_ticks(server: DagsterDev) -> None:
    """The check alert sensor reads the event log of the PostgreSQL storage without error (its
    tests use an in-memory instance)."""
    deadline = time.monotonic() + TICK_SECONDS
    while True:
        repositories = server.query(SENSOR_TICKS)["repositoriesOrError"]["nodes"]
        ticks = next(
            s["sensorState"]["ticks"]
            for repo in repositories
            for s in repo["sensors"]
            if s["name"] == ASSET_CHECK_FAILURE_ALERT_SENSOR
        )
        if len(ticks) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert ticks, f"{ASSET_CHECK_FAILURE_ALERT_SENSOR} never ticked\n{server.log_tail()}"
    failed = [t["error"]["message"] for t in ticks if t["status"] == "FAILURE"]
    assert not failed, f"{ASSET_CHECK_FAILURE_ALERT_SENSOR} ticks failed: {failed}"


def _check_daemons(server: DagsterDev) -> None:
    statuses = server.query(DAEMONS)["instance"]["daemonHealth"]["allDaemonStatuses"]
    unhealthy = [s["daemonType"] for s in statuses if s["required"] and s["healthy"] is False]
    assert not unhealthy, f"daemons reported unhealthy: {unhealthy}\n{server.log_tail()}"
    assert {"SCHEDULER", "SENSOR", "BACKFILL", "QUEUED_RUN_COORDINATOR"} <= {s["daemonType"] for s in statuses if s["required"]}
