"""The code location as the Dagster UI loads it: it loads, and its asset graph, jobs, schedules and
sensors are the ones docs/operations.md describes, each aimed at the right target.

The expected graph is written out here by hand from the docs (lineage from the platform's tables to
the delivered reports), so a definition that drops an edge, a job that selects the wrong assets or a
sensor aimed at another job fails here before anyone opens the UI."""

from __future__ import annotations

import dagster as dg
import pytest

from analytics_pipeline.aggregation.reconciliation import ABSORBS_EVERY_COMMITTED_EVENT_CHECK as RECONCILE_CHECK
from analytics_pipeline.definitions import defs
from analytics_pipeline.domains import DOMAINS, declared_state_names

# Tables the platform owns (AssetSpecs: lineage starts at them).
PLATFORM = {"organizations", "users", "analytics_events"}
# Derived states, absorbed from analytics_events in commit order.
STATES = {
    "subscription_history", "payment_history", "customer_sources", "tournament_history", "user_signups",
    "user_activity_months",
}
# asset -> its upstream assets.
LINEAGE = {
    "organizations": set(),
    "users": {"organizations"},
    "analytics_events": {"organizations", "users"},
    **{state: {"analytics_events"} for state in STATES},
    "revenue_aggregates": {"subscription_history", "payment_history"},
    "revenue_kpis": {"revenue_aggregates", "subscription_history"},
    "revenue_segments": {"revenue_aggregates", "subscription_history", "customer_sources"},
    "tournament_aggregates": {"tournament_history"},
    "user_cohorts": {"user_signups", "user_activity_months"},
    "user_cohort_segments": {"user_cohorts", "subscription_history", "customer_sources"},
    "report_deliveries": {"revenue_aggregates", "revenue_kpis", "tournament_aggregates", "user_cohorts"},
}
PARTITIONED = {
    "revenue_aggregates": "daily", "revenue_segments": "daily", "tournament_aggregates": "daily",
    "user_cohorts": "monthly", "user_cohort_segments": "monthly",
}
# job -> the assets it materializes.
JOBS = {
    "hourly_aggregates_job": {"revenue_aggregates", "revenue_segments", "tournament_aggregates"},
    "user_cohorts_job": {"user_cohorts", "user_cohort_segments"},
    "report_delivery_job": {"report_deliveries"},
}
# schedule -> (cron, job), all in UTC and running from the first start.
SCHEDULES = {
    "hourly_aggregates_schedule": ("5 * * * *", "hourly_aggregates_job"),
    "user_cohorts_daily": ("30 2 * * *", "user_cohorts_job"),
    "reconcile_states_daily": ("15 3 * * *", "reconcile_states_job"),
}
# sensor -> the jobs it may launch (none: it launches no run, it alerts or cleans up).
SENSORS = {
    "new_events_sensor": {"hourly_aggregates_job", "user_cohorts_job"},
    "scheduled_reports_sensor": {"report_delivery_job"},
    "retention_cleanup_sensor": {"retention_cleanup_job"},
    "run_failure_alert_sensor": set(),
    "asset_check_failure_alert_sensor": set(),
    "dagster_run_retention_sensor": set(),
}


@pytest.fixture(scope="module")
def graph():
    return defs.resolve_asset_graph()


def _schedules():
    return defs.get_repository_def().schedule_defs


def _sensors():
    return defs.get_repository_def().sensor_defs


def test_the_code_location_loads():
    dg.Definitions.validate_loadable(defs)


def test_lineage_runs_from_the_platform_tables_to_the_delivered_reports(graph):
    found = {key.to_user_string(): {p.to_user_string() for p in graph.get(key).parent_keys}
             for key in graph.get_all_asset_keys()}
    assert found == LINEAGE


def test_the_platform_tables_are_specs_and_everything_else_is_materializable(graph):
    for key in graph.get_all_asset_keys():
        name = key.to_user_string()
        node = graph.get(key)
        if name in PLATFORM or name == "revenue_kpis":  # revenue_kpis is a view over the aggregates
            assert not node.is_materializable, name
        else:
            assert node.is_materializable, name


def test_aggregates_are_partitioned_by_time_and_states_are_not(graph):
    for key in graph.get_all_asset_keys():
        name = key.to_user_string()
        partitions = graph.get(key).partitions_def
        if name in PARTITIONED:
            assert isinstance(partitions, dg.TimeWindowPartitionsDefinition), name
            expected_cron = "0 0 * * *" if PARTITIONED[name] == "daily" else "0 0 1 * *"
            assert partitions.cron_schedule == expected_cron, name
            assert partitions.timezone == "UTC", name
        else:
            assert partitions is None, name


def test_the_domains_declare_exactly_the_states_and_aggregates(graph):
    assert set(declared_state_names()) == STATES
    published = {name for domain in DOMAINS for name in domain.aggregates}
    assert published == set(PARTITIONED)


def test_every_state_is_reconciled_and_every_aggregate_checked(graph):
    checks: dict[str, set[str]] = {}
    for check in graph.asset_check_keys:
        checks.setdefault(check.asset_key.to_user_string(), set()).add(check.name)
    for state in STATES:
        assert RECONCILE_CHECK in checks.get(state, set()), state
    for aggregate in PARTITIONED:
        # at least the malformed-events and the value-range checks, and the domain's rules
        assert len(checks.get(aggregate, set())) >= 3, (aggregate, checks.get(aggregate))


@pytest.mark.parametrize("job_name, assets", sorted(JOBS.items()))
def test_each_job_materializes_its_assets(job_name, assets):
    job = defs.resolve_job_def(job_name)
    assert {key.to_user_string() for key in job.asset_layer.selected_asset_keys} == assets


def test_the_reconciliation_job_runs_only_the_reconciliation_checks(graph):
    """(test_reconciliation.py runs it and sees one evaluation per state.)"""
    job = defs.resolve_job_def("reconcile_states_job")
    assert job.asset_layer.selected_asset_keys == set()
    assert [node.name for node in job.graph.node_defs] == ["reconcile_derived_states"]
    reconciled = {c.asset_key.to_user_string() for c in graph.asset_check_keys if c.name == RECONCILE_CHECK}
    assert reconciled == STATES


@pytest.mark.parametrize("name, expected", sorted(SCHEDULES.items()))
def test_each_schedule_runs_its_job(name, expected):
    schedule = next(s for s in _schedules() if s.name == name)
    assert (schedule.cron_schedule, schedule.job_name) == expected
    assert schedule.execution_timezone == "UTC"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING


def test_there_are_no_other_schedules_or_sensors():
    assert {s.name for s in _schedules()} == set(SCHEDULES)
    assert {s.name for s in _sensors()} == set(SENSORS)


@pytest.mark.parametrize("name, jobs", sorted(SENSORS.items()))
def test_each_sensor_targets_its_jobs_and_runs_from_the_start(name, jobs):
    sensor = next(s for s in _sensors() if s.name == name)
    assert {target.job_name for target in sensor.targets} == jobs
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
