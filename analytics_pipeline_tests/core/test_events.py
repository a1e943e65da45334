"""The event contract: Python's `events.problem` and SQL's `analytics_event_problem` give the same
verdict on every case of one table, and the verdicts are the ones written here by hand from
docs/events.md."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
import sqlalchemy as sa

from analytics_pipeline.core import events

U = "usr_1"  # a user id, for the types that need one
SUB = '"subscription_id": "sub_1"'
ID_255 = "x" * 255  # ids of at most 255 characters are valid
ID_256 = "x" * 256
ID_255_WIDE = "é" * 255  # characters, not bytes

# The time of the check, and the times of an event recorded when it happened.
CHECKED_AT = "2026-01-15 12:00:00"
AT = "2026-01-10 10:00:00"

# (event_type, event_data as JSON text (None: SQL NULL), user_id, expected verdict), with
# "timestamp" and created_at AT; or (event_type, event_data, user_id, timestamp, created_at,
# expected verdict).
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
    ("subscription_started", f'{{{SUB}, "plan_id": "pro", "amount": 100000000, "interval": "month"}}', U, None),
    ("subscription_started", f'{{{SUB}, "plan_id": "pro", "amount": "99999999999.99", "interval": "week"}}', U, None),
    ("subscription_started", f'{{{SUB}, "plan_id": "pro", "amount": "99999999999.999", "interval": "week"}}', U, None),
    ("subscription_started", f'{{{SUB}, "plan_id": "pro", "amount": 100000000000, "interval": "month"}}', U, "bad amount"),
    ("subscription_started", f'{{{SUB}, "plan_id": "pro", "amount": "100000000000.01", "interval": "month"}}', U, "bad amount"),
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
    ("payment_completed", '{"payment_id": "p1", "amount": 1E+8}', U, None),
    ("payment_completed", '{"payment_id": "p1", "amount": "99999999.995"}', U, None),
    ("payment_completed", '{"payment_id": "p1", "amount": 99999999999.99}', U, None),
    ("payment_completed", '{"payment_id": "p1", "amount": 1E+11}', U, "bad amount"),
    ("payment_completed", '{"payment_id": "p1", "amount": "100000000000.01"}', U, "bad amount"),
    ("payment_refunded", '{"payment_id": "p1", "amount": 0.01}', None, None),
    ("payment_refunded", '{"payment_id": "p1", "amount": 100000000000}', None, "bad amount"),
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
    ("tournament_completed", '{"tournament_id": "t1", "duration_minutes": -0.01}', None, "bad duration_minutes"),
    ("tournament_completed", '{"tournament_id": "t1", "duration_minutes": 99999999.999}', None, None),
    ("tournament_completed", '{"tournament_id": "t1", "duration_minutes": 100000000}', None, "bad duration_minutes"),
    ("tournament_completed", '{"tournament_id": "t1", "duration_minutes": "long"}', None, "bad duration_minutes"),
    ("tournament_completed", '{"tournament_id": "t1", "duration_minutes": null}', None, "bad duration_minutes"),
    ("tournament_completed", '{"duration_minutes": 5}', None, "bad tournament_id"),
    ("player_registered", '{"tournament_id": "t1"}', U, None),
    ("player_registered", "{}", U, "bad tournament_id"),
    # text the COPY path and JSON escaping must carry through unchanged
    ("player_registered", '{"tournament_id": "Ünïcødé \\"quoted\\" \\\\ back\\nslash"}', U, None),
    # ids: at most 255 characters, every id the contract reads
    ("tournament_started", f'{{"tournament_id": "{ID_255}"}}', None, None),
    ("tournament_started", f'{{"tournament_id": "{ID_255_WIDE}"}}', None, None),
    ("tournament_started", f'{{"tournament_id": "{ID_256}"}}', None, "bad tournament_id"),
    ("tournament_started", f'{{"tournament_id": "{"x" * 3800}"}}', None, "bad tournament_id"),
    ("player_registered", f'{{"tournament_id": "{ID_256}"}}', U, "bad tournament_id"),
    ("tournament_created", f'{{"tournament_id": "t1", "format": "{ID_255}"}}', None, None),
    ("tournament_created", f'{{"tournament_id": "t1", "format": "{ID_256}"}}', None, "bad format"),
    ("subscription_cancelled", f'{{"subscription_id": "{ID_255}"}}', U, None),
    ("subscription_cancelled", f'{{"subscription_id": "{ID_256}"}}', U, "bad subscription_id"),
    ("subscription_started", f'{{{SUB}, "plan_id": "{ID_256}", "amount": 5, "interval": "month"}}', U, "bad plan_id"),
    ("subscription_changed", f'{{{SUB}, "plan_id": "{ID_256}", "amount": 5, "interval": "month"}}', U, "bad plan_id"),
    ("payment_completed", f'{{"payment_id": "{ID_255}", "amount": 5}}', None, None),
    ("payment_completed", f'{{"payment_id": "{ID_256}", "amount": 5}}', None, "bad payment_id"),
    ("payment_completed", f'{{"payment_id": "p1", "amount": 5, "subscription_id": "{ID_256}"}}', None, "bad subscription_id"),
    ("payment_completed", f'{{"payment_id": "p1", "amount": 5, "tournament_id": "{ID_255}"}}', None, None),
    ("payment_completed", f'{{"payment_id": "p1", "amount": 5, "tournament_id": "{ID_256}"}}', None, "bad tournament_id"),
    ("payment_failed", f'{{"payment_id": "p1", "amount": 5, "tournament_id": "{ID_256}"}}', None, None),
    ("user_signup", "{}", ID_255, None),
    ("user_signup", "{}", ID_256, "bad user_id"),
    ("page_view", "{}", ID_256, "bad user_id"),
    ("page_view", "{}", ID_255, None),
    # 255 characters of two bytes each: more than 255 bytes, still valid
    ("session_started", "{}", ID_255_WIDE, None),
    ("user_login", "{}", ID_255_WIDE + "é", "bad user_id"),
    ("level_up", f'{{"tournament_id": "{ID_256}"}}', ID_256, None),
    # timestamp: finite, from 2000-01-01 on, at most a day after created_at
    ("page_view", "{}", U, "2000-01-01 00:00:00", "2000-01-01 00:00:00", None),
    ("page_view", "{}", U, "1999-12-31 23:59:59.999999", AT, "bad timestamp"),
    ("page_view", "{}", U, "0001-01-01 00:00:00 BC", AT, "bad timestamp"),
    ("user_signup", "{}", U, "-infinity", AT, "bad timestamp"),
    ("user_signup", "{}", U, "infinity", AT, "bad timestamp"),
    ("page_view", "{}", U, "2026-01-11 10:00:00", AT, None),
    ("page_view", "{}", U, "2026-01-11 10:00:00.000001", AT, "bad timestamp"),
    ("payment_completed", '{"payment_id": "p1", "amount": 5}', U, "2031-01-01 00:00:00", AT, "bad timestamp"),
    ("page_view", "{}", U, "2020-01-01 00:00:00", AT, None),  # late by years: fine
    ("page_view", "{}", U, AT, "-infinity", "bad timestamp"),
    # created_at: at most five minutes after the time of the check
    ("page_view", "{}", U, AT, "2026-01-15 12:05:00", None),
    ("page_view", "{}", U, AT, "2026-01-15 12:05:00.000001", "created_at in the future"),
    ("page_view", "{}", U, "2020-01-01 00:00:00", "2030-01-01 00:00:00", "created_at in the future"),
    ("page_view", "{}", U, AT, "infinity", "created_at in the future"),
    ("page_view", "{}", U, "infinity", "infinity", "created_at in the future"),
    # the times are checked first; unknown types stay ignored whatever their times
    ("user_login", "[]", U, "1999-01-01 00:00:00", AT, "bad timestamp"),
    ("level_up", "{}", U, "-infinity", "infinity", None),
]
CASES = [case if len(case) == 6 else (*case[:3], AT, AT, case[3]) for case in CASES]


def _python_time(text: str) -> dt.datetime:
    """Python has no infinite or BC timestamps: the extremes it has give the same verdicts."""
    if text == "infinity":
        return dt.datetime.max
    if text == "-infinity" or text.endswith(" BC"):
        return dt.datetime.min
    return dt.datetime.fromisoformat(text)


def _python_verdict(event_type, data_json, user_id, timestamp, created_at) -> str | None:
    data = None if data_json is None else json.loads(data_json, parse_float=Decimal)
    return events.problem(
        event_type,
        data,
        user_id,
        _python_time(timestamp),
        _python_time(created_at),
        checked_at=dt.datetime.fromisoformat(CHECKED_AT),
    )


@pytest.mark.parametrize(("event_type", "data_json", "user_id", "timestamp", "created_at", "expected"), CASES)
def test_python_verdict(event_type, data_json, user_id, timestamp, created_at, expected):
    assert _python_verdict(event_type, data_json, user_id, timestamp, created_at) == expected


def test_sql_gives_the_same_verdicts(engine):
    with engine.connect() as conn:
        got = [
            conn.execute(
                sa.text(
                    "SELECT analytics_event_problem(:t, CAST(:d AS jsonb), :u, CAST(:ts AS timestamp), "
                    "CAST(:ca AS timestamp), CAST(:now AS timestamp))"
                ),
                {"t": t, "d": d, "u": u, "ts": ts, "ca": ca, "now": CHECKED_AT},
            ).scalar()
            for t, d, u, ts, ca, _ in CASES
        ]
    mismatches = [
        (case, verdict) for case, verdict in zip(CASES, got, strict=True) if verdict != case[-1]
    ]
    assert mismatches == []


def test_queries_check_created_at_against_the_statement_time(engine):
    """The five-argument form, which the aggregation SQL calls, checks at the statement's time."""
    with engine.connect() as conn:
        verdicts = conn.execute(
            sa.text(
                "SELECT analytics_event_problem('page_view', '{}', NULL, t, t + interval '4 minutes'), "
                "analytics_event_problem('page_view', '{}', NULL, t, t + interval '6 minutes') "
                "FROM (SELECT statement_timestamp() AT TIME ZONE 'UTC' AS t) AS now"
            )
        ).one()
    assert tuple(verdicts) == (None, "created_at in the future")


def test_the_contract_is_inlined_into_queries(engine):
    """Called once per event of a window, it must not be a function call per row: PostgreSQL
    inlines SQL functions that are a single expression and no more volatile than declared."""
    with engine.connect() as conn:
        plan = "\n".join(
            conn.execute(
                sa.text(
                    "EXPLAIN VERBOSE SELECT analytics_event_problem(e.event_type, e.event_data, "
                    'e.user_id, e."timestamp", e.created_at) FROM analytics_events AS e'
                )
            ).scalars()
        )
    assert "analytics_event_problem" not in plan and "CASE" in plan


def test_python_float_amounts_agree_away_from_the_bounds():
    """Callers that parse JSON the default way (floats) get the same verdicts on ordinary values."""
    assert events.problem("payment_completed", {"payment_id": "p", "amount": 24.99}, None) is None
    assert events.problem("payment_completed", {"payment_id": "p", "amount": float("nan")}, None) == "bad amount"
    assert events.problem("payment_completed", {"payment_id": "p", "amount": float("inf")}, None) == "bad amount"


def test_contract_table_names_every_type_the_sql_function_knows(engine):
    """An event type known to one side only would be silently ignored by the other."""
    with engine.connect() as conn:
        source = conn.execute(
            sa.text(
                "SELECT prosrc FROM pg_proc WHERE proname = 'analytics_event_problem' "
                "AND pronargs = 6"
            )
        ).scalar()
    in_sql = {name for name in events.EVENT_TYPES if f"'{name}'" in source}
    assert in_sql == set(events.EVENT_TYPES)
    assert len(events.EVENT_TYPES) == 15
