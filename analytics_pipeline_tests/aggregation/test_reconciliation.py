"""Reconciliation: every event a derived state has absorbed is in it, and a planted gap fails the
ERROR check naming tenant and day, and is alerted."""

from __future__ import annotations

import dagster as dg
import pytest
import sqlalchemy as sa

from analytics_pipeline import definitions
from analytics_pipeline.aggregation.reconciliation import ABSORBS_EVERY_COMMITTED_EVENT_CHECK
from analytics_pipeline.alerts import asset_check_failure_alert_sensor
from analytics_pipeline.cohorts.assets import user_activity_months, user_signups
from analytics_pipeline.core.resources import MailResource, pipeline_resources
from analytics_pipeline.revenue.assets import customer_sources, payment_history, subscription_history
from analytics_pipeline.tournaments.assets import tournament_history

from ..helpers import add_event
from ..loopback_smtp import loopback_inbox

STATES = (
    "subscription_history", "payment_history", "customer_sources", "tournament_history", "user_signups",
    "user_activity_months",
)

# Each state's gap: one statement removing what one of t2's events on 2025-03-04 put in it.
GAPS = {
    "subscription_history": "DELETE FROM subscription_events WHERE event_id = 'sub-t2'",
    "payment_history": "DELETE FROM payment_events WHERE event_id = 'pay-t2'",
    "tournament_history": "DELETE FROM tournament_history WHERE tournament_id = 'T2'",
    "user_signups": "DELETE FROM user_signups WHERE user_id = 'u2'",
    "customer_sources": "DELETE FROM customer_sources WHERE user_id = 'u2'",
    "user_activity_months": "UPDATE user_activity_months SET payment_amounts = payment_amounts - 'pay-t2' "
                            "WHERE user_id = 'u2'",
}


@pytest.fixture
def absorbed(db_url, engine, monkeypatch):
    """Two tenants' events absorbed by every state."""
    monkeypatch.setenv("DATABASE_URL", db_url)
    with engine.begin() as conn:
        for tenant, user in (("t1", "u1"), ("t2", "u2")):
            suffix = tenant
            add_event(conn, tenant, "user_signup", "2025-03-04 08:00", user, event_id=f"signup-{suffix}")
            add_event(conn, tenant, "subscription_started", "2025-03-04 09:00", user, event_id=f"sub-{suffix}",
                      subscription_id="s", plan_id="pro", amount=20, interval="month")
            add_event(conn, tenant, "payment_completed", "2025-03-04 09:01", user, event_id=f"pay-{suffix}",
                      payment_id="p", amount=20)
            add_event(conn, tenant, "tournament_created", "2025-03-04 10:00", user,
                      event_id=f"tc-{suffix}", tournament_id=f"T{tenant[-1]}", format="swiss")
        # A malformed event: reflected by its copy in malformed_events.
        add_event(conn, "t1", "payment_completed", "2025-03-05 10:00", "u1", event_id="bad", amount="lots")
    state_assets = [
        subscription_history, payment_history, customer_sources, tournament_history, user_signups, user_activity_months
    ]
    assert dg.materialize(state_assets, resources=pipeline_resources(db_url)).success
    return engine


def reconcile(instance=None):
    job = definitions.defs.resolve_job_def("reconcile_states_job")
    result = job.execute_in_process(instance=instance or dg.DagsterInstance.ephemeral(), raise_on_error=False)
    return {e.asset_key.path[-1]: e for e in result.get_asset_check_evaluations()}, result


def test_every_state_holds_what_it_absorbed(absorbed):
    evaluations, _ = reconcile()
    assert set(evaluations) == set(STATES)
    assert all(e.passed for e in evaluations.values()), {k: e.metadata for k, e in evaluations.items()}
    assert all(
        e.check_name == ABSORBS_EVERY_COMMITTED_EVENT_CHECK and e.severity == dg.AssetCheckSeverity.ERROR
        for e in evaluations.values()
    )


@pytest.mark.parametrize("state_name", STATES)
def test_a_planted_gap_fails_naming_tenant_and_day(absorbed, state_name):
    with absorbed.begin() as conn:
        assert conn.execute(sa.text(GAPS[state_name])).rowcount == 1
    evaluations, _ = reconcile()
    failed = evaluations[state_name]
    assert not failed.passed
    examples = failed.metadata["examples"].value
    assert len(examples) == 1 and examples[0].startswith("tenant t2, 2025-03-04: ")
    assert failed.metadata["missing_events"].value == 1
    assert all(e.passed for name, e in evaluations.items() if name != state_name)


def test_a_malformed_event_kept_out_of_the_state_fails(absorbed):
    with absorbed.begin() as conn:
        assert conn.execute(sa.text("DELETE FROM malformed_events WHERE event_id = 'bad'")).rowcount == 1
    evaluations, _ = reconcile()
    assert not evaluations["user_activity_months"].passed
    assert evaluations["user_activity_months"].metadata["examples"].value == [
        "tenant t1, 2025-03-05: 1 events absorbed, 0 in user_activity_months"
    ]


def test_events_committed_since_the_last_absorb_are_new_not_missing(absorbed):
    with absorbed.begin() as conn:
        add_event(conn, "t1", "subscription_started", "2025-03-06 09:00", "u1", subscription_id="s2",
                  plan_id="pro", amount=5, interval="month")
        add_event(conn, "t1", "payment_completed", "2025-03-06 09:00", "u1", payment_id="p2", amount=5)
    evaluations, _ = reconcile()
    assert all(e.passed for e in evaluations.values())


def test_a_state_never_absorbed_is_not_a_gap(db_url, engine, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", db_url)
    with engine.begin() as conn:
        add_event(conn, "t1", "payment_completed", "2025-03-06 09:00", "u1", payment_id="p", amount=5)
    evaluations, _ = reconcile()
    assert all(e.passed for e in evaluations.values())
    assert evaluations["payment_history"].metadata["absorbed_snapshot"].value == "none: not absorbed yet"


def test_the_failed_reconciliation_is_alerted(absorbed, monkeypatch):
    with loopback_inbox(monkeypatch) as inbox, dg.DagsterInstance.ephemeral() as instance:
        def tick(cursor):
            context = dg.build_sensor_context(
                instance=instance, cursor=cursor, definitions=definitions.defs, resources={"mail": MailResource()}
            )
            return asset_check_failure_alert_sensor.evaluate_tick(context).cursor

        cursor = tick(None)
        with absorbed.begin() as conn:
            conn.execute(sa.text(GAPS["payment_history"]))
        reconcile(instance)
        tick(cursor)
        assert len(inbox.messages) == 1
        body = inbox.messages[0].get_content()
    assert f"Check {ABSORBS_EVERY_COMMITTED_EVENT_CHECK} on payment_history failed (severity ERROR):" in body
    assert "tenant t2, 2025-03-04: 1 events absorbed, 0 in payment_events" in body
