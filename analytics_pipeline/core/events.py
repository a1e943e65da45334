"""The event contract of `analytics_events` (docs/events.md), in Python.

Every metric is computed in PostgreSQL, where `analytics_event_problem(event_type, event_data,
user_id, "timestamp", created_at)` (migrations 0004_event_contract, 0011_event_contract_limits and 0017_faster_event_contract)
decides which events are malformed. `problem()` here is its twin for Python callers (the
generator, tests, tools); the two must give the same verdict on the same input, and
`analytics_pipeline_tests/core/test_events.py` runs both over one table of cases. Change one only
together with the other.

`event_data` is the parsed JSON value. Parse it with `json.loads(text, parse_float=Decimal)` to
agree with PostgreSQL to the last digit: PostgreSQL keeps JSON numbers exact, a float does not.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

# Amounts are below this bound, five orders of magnitude under what the aggregates' NUMERIC(18,2)
# holds (10^16), so that sums over a year of a big tenant fit (docs/events.md#malformed-events).
MAX_AMOUNT = Decimal(100_000_000_000)
# 190 years: any larger duration is a unit error, and every average of valid ones fits.
MAX_DURATION_MINUTES = Decimal(100_000_000)
# Longer ids do not fit the states' btree indexes (at most 2704 bytes per entry), and no platform
# issues them.
MAX_ID_LENGTH = 255
# The platform has no earlier history; an earlier timestamp is a client's unset clock.
EARLIEST_TIMESTAMP = dt.datetime(2000, 1, 1)
# A client may stamp an event ahead of the platform's clock by this much, no more.
MAX_TIMESTAMP_AHEAD = dt.timedelta(days=1)
# created_at comes from the platform's clock; a later one than now by more than this is wrong.
CLOCK_SKEW = dt.timedelta(minutes=5)

# A numeric string: optional sign, digits with an optional fraction, optional short exponent.
# The same pattern as analytics_number() in migration 0004; no NaN, no Infinity, no spaces.
NUMBER_PATTERN = re.compile(r"[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][+-]?[0-9]{1,3})?")

INTERVALS = ("week", "month", "quarter", "year")

# Formats the platform offers; tournament_created accepts any other non-empty string too.
TOURNAMENT_FORMATS = ("single_elimination", "double_elimination", "round_robin", "swiss")


@dataclass(frozen=True)
class EventType:
    """One row of the contract table in docs/events.md."""

    name: str
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    needs_user: bool = False
    meaning: str = ""


EVENT_TYPES: dict[str, EventType] = {
    t.name: t
    for t in (
        EventType("user_signup", (), ("source",), True, "the user joined the tenant"),
        EventType("user_login", (), (), False, "activity"),
        EventType("session_started", (), (), False, "activity"),
        EventType("page_view", (), (), False, "activity"),
        EventType(
            "subscription_started",
            ("subscription_id", "plan_id", "amount", "interval"),
            ("currency",),
            True,
            "a subscription begins at `amount` per `interval`",
        ),
        EventType(
            "subscription_changed",
            ("subscription_id", "amount", "interval"),
            ("plan_id",),
            True,
            "the subscription's new price from the event's timestamp on",
        ),
        EventType(
            "subscription_cancelled",
            ("subscription_id",),
            (),
            True,
            "the subscription ends at the event's timestamp",
        ),
        EventType(
            "payment_completed",
            ("payment_id", "amount"),
            ("currency", "subscription_id", "tournament_id"),
            False,
            "money received",
        ),
        EventType("payment_failed", ("payment_id", "amount"), ("reason",), False, "a charge failed"),
        EventType(
            "payment_refunded",
            ("payment_id", "amount"),
            (),
            False,
            "money returned; `amount` is the refunded amount, positive",
        ),
        EventType("tournament_created", ("tournament_id", "format"), (), False, "announced"),
        EventType("tournament_started", ("tournament_id",), (), False, "play began"),
        EventType("tournament_completed", ("tournament_id",), ("duration_minutes",), False, "finished"),
        EventType("tournament_cancelled", ("tournament_id",), (), False, "will not be played"),
        EventType(
            "player_registered", ("tournament_id",), (), True, "user_id registered as a player"
        ),
    )
}


def number(value: Any) -> Decimal | None:
    """A JSON number or numeric string as a Decimal; None for anything else (like
    analytics_number() in SQL). Booleans are not numbers in JSON."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(value) if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, str) and NUMBER_PATTERN.fullmatch(value):
        try:
            return Decimal(value)
        except InvalidOperation:  # pragma: no cover - the pattern admits only valid literals
            return None
    return None


def amount(event_data: Any) -> Decimal | None:
    """The event's `amount` (like analytics_amount() in SQL)."""
    return number(event_data.get("amount")) if isinstance(event_data, Mapping) else None


def is_id(value: Any) -> bool:
    """A non-empty string of at most MAX_ID_LENGTH characters (like analytics_is_id() in SQL)."""
    return isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH


def _in_range(value: Decimal | None, *, positive: bool, bound: Decimal = MAX_AMOUNT) -> bool:
    if value is None:
        return False
    low_ok = value > 0 if positive else value >= 0
    return low_ok and value < bound


def time_problem(
    timestamp: dt.datetime, created_at: dt.datetime, checked_at: dt.datetime
) -> str | None:
    """The reason the event's times are wrong, None when they are fine. All naive UTC; Python has
    no infinite timestamps: datetime.min and datetime.max give the same verdicts."""
    if created_at - checked_at > CLOCK_SKEW:
        return "created_at in the future"
    if timestamp < EARLIEST_TIMESTAMP or timestamp - created_at > MAX_TIMESTAMP_AHEAD:
        return "bad timestamp"
    return None


def problem(
    event_type: str,
    event_data: Any,
    user_id: str | None,
    timestamp: dt.datetime | None = None,
    created_at: dt.datetime | None = None,
    *,
    checked_at: dt.datetime | None = None,
) -> str | None:
    """None when the event is valid or of an unknown type, else the same short reason that
    analytics_event_problem() gives. The checks run in the SQL function's order. Without
    `timestamp` and `created_at` (an event not recorded yet) the times are not checked;
    `checked_at` is the time of the check (default now, UTC), as statement_timestamp() in SQL."""
    if event_type not in EVENT_TYPES:
        return None
    if timestamp is not None and created_at is not None:
        if checked_at is None:
            checked_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        if reason := time_problem(timestamp, created_at, checked_at):
            return reason
    if not isinstance(event_data, Mapping):
        return "event_data is not an object"
    if EVENT_TYPES[event_type].needs_user and not user_id:
        return "missing user_id"
    if user_id is not None and len(user_id) > MAX_ID_LENGTH:
        return "bad user_id"
    data = event_data
    subscription = event_type.startswith("subscription_")
    payment = event_type.startswith("payment_")
    if subscription and not is_id(data.get("subscription_id")):
        return "bad subscription_id"
    if event_type == "subscription_started" and not is_id(data.get("plan_id")):
        return "bad plan_id"
    if event_type == "subscription_changed" and "plan_id" in data and not is_id(data["plan_id"]):
        return "bad plan_id"
    if event_type in ("subscription_started", "subscription_changed"):
        if not _in_range(amount(data), positive=False):
            return "bad amount"
        if data.get("interval") not in INTERVALS:
            return "bad interval"
    if payment and not is_id(data.get("payment_id")):
        return "bad payment_id"
    if payment and not _in_range(amount(data), positive=True):
        return "bad amount"
    if (
        event_type == "payment_completed"
        and "subscription_id" in data
        and not is_id(data["subscription_id"])
    ):
        return "bad subscription_id"
    if (
        event_type.startswith("tournament_")
        or event_type == "player_registered"
        or (event_type == "payment_completed" and "tournament_id" in data)
    ) and not is_id(data.get("tournament_id")):
        return "bad tournament_id"
    if event_type == "tournament_created" and not is_id(data.get("format")):
        return "bad format"
    if (
        event_type == "tournament_completed"
        and "duration_minutes" in data
        and not _in_range(
            number(data["duration_minutes"]), positive=False, bound=MAX_DURATION_MINUTES
        )
    ):
        return "bad duration_minutes"
    return None
