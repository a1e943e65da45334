"""The event contract: Python's `events.problem` and SQL's `analytics_event_problem` give the same
verdict on every case of one table, and the verdicts are the ones written here by hand from
docs/events.md."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
import sqlalchemy as sa

from analytics_pipeline import events

U = "usr_1"  # a user id, for the types that need one
SUB = '"subscription_id": "sub_1"'

# (event_type, event_data as JSON text (None: SQL NULL), user_id, expected verdict)
CASES = [
    # unknown types are ignored, whatever they carry
    ("level_up", '{"amount": -5}', None, None),
    ("level_up", "[]", None, None),
    ("Payment_Completed", '{"payment_id": ""}', None, None),
    # event_data must be an object
    ("page_view", "{}", None, None),
    ("page_view", '{"path": "/x"}', U, None),
    ("page_view", "[]", U, "event_data is not an object"),
    ("user_login", '"login"', U, "event_data is not an object"),
    ("session_started", "null", U, "event_data is not an object"),
    ("session_started", None, U, "event_data is not an object"),
    ("user_login", "7", U, "event_data is not an object"),
    # user_id
    ("user_signup", "{}", U, None),
    ("user_signup", '{"source": "ads"}', U, None),
    ("user_signup", "{}", None, "missing user_id"),
    ("user_signup", "{}", "", "missing user_id"),
    ("player_registered", '{"tournament_id": "t1"}', None, "missing user_id"),
    ("subscription_cancelled", f"{{{SUB}}}", None, "missing user_id"),
    ("payment_completed", '{"payment_id": "p1", "amount": 5}', None, None),
    ("user_login", "{}", None, None),
    # subscription_started
    ("subscription_started", f'{{{SUB}, "plan_id": "pro", "amount": "19.99", "interval": "month"}}', U, None),
    ("subscription_started", f'{{{SUB}, "plan_id": "pro", "amount": 0, "interval": "week", "currency": "EUR"}}', U, None),
    ("subscription_started", f'{{{SUB}, "plan_id": "pro", "amount": 1.2e2, "interval": "year"}}', U, None),
    ("subscription_started", f'{{{SUB}, "plan_id": "pro", "amount": "99999999.99", "interval": "quarter"}}', U, None),
    ("subscription_started", '{"plan_id": "pro", "amount": 5, "interval": "month"}', U, "bad subscription_id"),
    ("subscription_started", '{"subscription_id": "", "plan_id": "pro", "amount": 5, "interval": "month"}', U, "bad subscription_id"),
    ("subscription_started", '{"subscription_id": 17, "plan_id": "pro", "amount": 5, "interval": "month"}', U, "bad subscription_id"),
    ("subscription_started", f'{{{SUB}, "amount": 5, "interval": "month"}}', U, "bad plan_id"),
    ("subscription_started", f'{{{SUB}, "plan_id": null, "amount": 5, "interval": "month"}}', U, "bad plan_id"),
    ("subscription_started", f'{{{SUB}, "plan_id": "pro", "interval": "month"}}', U, "bad amount"),
    ("subscription_started", f'{{{SUB}, "plan_id": "pro", "amount": -0.01, "interval": "month"}}', U, "bad amount"),
    ("subscription_started", f'{{{SUB}, "plan_id": "pro", "amount": "NaN", "interval": "month"}}', U, "bad amount"),
    ("subscription_started", f'{{{SUB}, "plan_id": "pro", "amount": "Infinity", "interval": "month"}}', U, "bad amount"),
    ("subscription_started", f'{{{SUB}, "plan_id": "pro", "amount": "12,50", "interval": "month"}}', U, "bad amount"),
    ("subscription_started", f'{{{SUB}, "plan_id": "pro", "amount": " 12", "interval": "month"}}', U, "bad amount"),
    ("subscription_started", f'{{{SUB}, "plan_id": "pro", "amount": "1e5000", "interval": "month"}}', U, "bad amount"),
    ("subscription_started", f'{{{SUB}, "plan_id": "pro", "amount": 1e400, "interval": "month"}}', U, "bad amount"),
    ("subscription_started", f'{{{SUB}, "plan_id": "pro", "amount": 100000000, "interval": "month"}}', U, "bad amount"),
    ("subscription_started", f'{{{SUB}, "plan_id": "pro", "amount": true, "interval": "month"}}', U, "bad amount"),
    ("subscription_started", f'{{{SUB}, "plan_id": "pro", "amount": [5], "interval": "month"}}', U, "bad amount"),
    ("subscription_started", f'{{{SUB}, "plan_id": "pro", "amount": 5}}', U, "bad interval"),
    ("subscription_started", f'{{{SUB}, "plan_id": "pro", "amount": 5, "interval": "Month"}}', U, "bad interval"),
    ("subscription_started", f'{{{SUB}, "plan_id": "pro", "amount": 5, "interval": "fortnight"}}', U, "bad interval"),
    ("subscription_started", f'{{{SUB}, "plan_id": "pro", "amount": 5, "interval": ["month"]}}', U, "bad interval"),
    # subscription_changed: plan_id optional, but an id when present
    ("subscription_changed", f'{{{SUB}, "amount": "29", "interval": "month"}}', U, None),
    ("subscription_changed", f'{{{SUB}, "amount": "29", "interval": "month", "plan_id": "team"}}', U, None),
    ("subscription_changed", f'{{{SUB}, "amount": "29", "interval": "month", "plan_id": ""}}', U, "bad plan_id"),
    ("subscription_changed", f'{{{SUB}, "amount": "29", "interval": "month", "plan_id": 3}}', U, "bad plan_id"),
    ("subscription_changed", f'{{{SUB}, "interval": "month"}}', U, "bad amount"),
    ("subscription_changed", f'{{{SUB}, "amount": "+.5e-3", "interval": "month"}}', U, None),
    ("subscription_changed", f'{{{SUB}, "amount": "5.", "interval": "month"}}', U, None),
    ("subscription_changed", f'{{{SUB}, "amount": "1e-1000", "interval": "month"}}', U, "bad amount"),
    ("subscription_changed", '{"amount": "29", "interval": "month"}', U, "bad subscription_id"),
    # subscription_cancelled
    ("subscription_cancelled", f'{{{SUB}, "reason": "too expensive"}}', U, None),
    ("subscription_cancelled", "{}", U, "bad subscription_id"),
    # payments: amount must be > 0
    ("payment_completed", '{"payment_id": "p1", "amount": "0.01"}', U, None),
    ("payment_completed", '{"payment_id": "p1", "amount": 25, "currency": "EUR", "subscription_id": "s1"}', U, None),
    ("payment_completed", '{"payment_id": "p1", "amount": 25, "tournament_id": "t1"}', U, None),
    ("payment_completed", '{"payment_id": "p1", "amount": 0}', U, "bad amount"),
    ("payment_completed", '{"payment_id": "p1", "amount": "-0"}', U, "bad amount"),
    ("payment_completed", '{"payment_id": "p1", "amount": "abc"}', U, "bad amount"),
    ("payment_completed", '{"payment_id": "p1", "amount": 99999999.999}', U, None),
    ("payment_completed", '{"payment_id": "p1", "amount": 99999999.9999999999999999}', U, None),
    ("payment_completed", '{"payment_id": "p1", "amount": 1E+8}', U, "bad amount"),
    ("payment_completed", '{"amount": 25}', U, "bad payment_id"),
    ("payment_completed", '{"payment_id": ["p1"], "amount": 25}', U, "bad payment_id"),
    ("payment_completed", '{"payment_id": "p1", "amount": 25, "subscription_id": null}', U, "bad subscription_id"),
    ("payment_completed", '{"payment_id": "p1", "amount": 25, "subscription_id": ""}', U, "bad subscription_id"),
    ("payment_completed", '{"payment_id": "p1", "amount": 25, "tournament_id": 9}', U, "bad tournament_id"),
    ("payment_failed", '{"payment_id": "p2", "amount": "10.00", "reason": "card_declined"}', None, None),
    ("payment_failed", '{"payment_id": "p2", "amount": "10.00", "subscription_id": ""}', None, None),
    ("payment_failed", '{"payment_id": "p2"}', None, "bad amount"),
    ("payment_refunded", '{"payment_id": "p1", "amount": 12.5}', None, None),
    ("payment_refunded", '{"payment_id": "p1", "amount": -12.5}', None, "bad amount"),
    ("payment_refunded", '{"payment_id": "", "amount": 12.5}', None, "bad payment_id"),
    # tournaments
    ("tournament_created", '{"tournament_id": "t1", "format": "swiss"}', None, None),
    ("tournament_created", '{"tournament_id": "t1", "format": "battle_royale"}', None, None),
    ("tournament_created", '{"tournament_id": "t1"}', None, "bad format"),
    ("tournament_created", '{"tournament_id": "t1", "format": ""}', None, "bad format"),
    ("tournament_created", '{"format": "swiss"}', None, "bad tournament_id"),
    ("tournament_started", '{"tournament_id": "t1"}', None, None),
    ("tournament_started", '{"tournament_id": 1}', None, "bad tournament_id"),
    ("tournament_cancelled", '{"tournament_id": "t1"}', None, None),
    ("tournament_cancelled", '{"tournament_id": null}', None, "bad tournament_id"),
    ("tournament_completed", '{"tournament_id": "t1"}', None, None),
    ("tournament_completed", '{"tournament_id": "t1", "duration_minutes": 95}', None, None),
    ("tournament_completed", '{"tournament_id": "t1", "duration_minutes": "0"}', None, None),
    ("tournament_completed", '{"tournament_id": "t1", "duration_minutes": -1}', None, "bad duration_minutes"),
    ("tournament_completed", '{"tournament_id": "t1", "duration_minutes": "long"}', None, "bad duration_minutes"),
    ("tournament_completed", '{"tournament_id": "t1", "duration_minutes": null}', None, "bad duration_minutes"),
    ("tournament_completed", '{"duration_minutes": 5}', None, "bad tournament_id"),
    ("player_registered", '{"tournament_id": "t1"}', U, None),
    ("player_registered", "{}", U, "bad tournament_id"),
    # text the COPY path and JSON escaping must carry through unchanged
    ("player_registered", '{"tournament_id": "Ünïcødé \\"quoted\\" \\\\ back\\nslash"}', U, None),
]


def _python_verdict(event_type: str, data_json: str | None, user_id: str | None) -> str | None:
    data = None if data_json is None else json.loads(data_json, parse_float=Decimal)
    return events.problem(event_type, data, user_id)


@pytest.mark.parametrize(("event_type", "data_json", "user_id", "expected"), CASES)
def test_python_verdict(event_type, data_json, user_id, expected):
    assert _python_verdict(event_type, data_json, user_id) == expected


def test_sql_gives_the_same_verdicts(engine):
    with engine.connect() as conn:
        got = [
            conn.execute(
                sa.text("SELECT analytics_event_problem(:t, CAST(:d AS jsonb), :u)"),
                {"t": event_type, "d": data_json, "u": user_id},
            ).scalar()
            for event_type, data_json, user_id, _ in CASES
        ]
    mismatches = [
        (case, verdict) for case, verdict in zip(CASES, got, strict=True) if verdict != case[3]
    ]
    assert mismatches == []


def test_python_float_amounts_agree_away_from_the_bounds():
    """Callers that parse JSON the default way (floats) get the same verdicts on ordinary values."""
    assert events.problem("payment_completed", {"payment_id": "p", "amount": 24.99}, None) is None
    assert events.problem("payment_completed", {"payment_id": "p", "amount": float("nan")}, None) == "bad amount"
    assert events.problem("payment_completed", {"payment_id": "p", "amount": float("inf")}, None) == "bad amount"


def test_contract_table_names_every_type_the_sql_function_knows(engine):
    """An event type known to one side only would be silently ignored by the other."""
    with engine.connect() as conn:
        source = conn.execute(
            sa.text("SELECT prosrc FROM pg_proc WHERE proname = 'analytics_event_problem'")
        ).scalar()
    in_sql = {name for name in events.EVENT_TYPES if f"'{name}'" in source}
    assert in_sql == set(events.EVENT_TYPES)
    assert len(events.EVENT_TYPES) == 15
