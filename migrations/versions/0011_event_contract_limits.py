"""The event contract rejects what the tables cannot hold (docs/events.md#malformed-events).

Replaces the SQL contract of 0004_event_contract:
- ids (`subscription_id`, `plan_id`, `payment_id`, `tournament_id`, `format`, and `user_id`) of
  more than 255 characters are malformed: longer ones do not fit the states' btree indexes and
  stopped every tenant's absorb;
- the event's times are checked: `timestamp` infinite, before 2000-01-01 or more than a day after
  `created_at` is *bad timestamp*; `created_at` more than five minutes after the time of the check
  is *created_at in the future*;
- amounts may reach 100,000,000,000 (exclusive), now that revision 0010 stores money in
  NUMERIC(18,2); durations keep their bound of 100,000,000 minutes.

`analytics_event_problem(event_type, event_data, user_id, "timestamp", created_at, checked_at)`
is IMMUTABLE; the five-argument form that every query calls passes the statement's start as
`checked_at` and is STABLE. Both are single SQL expressions, which the planner inlines. The
three-argument form is dropped, so that no query keeps the contract without the time checks.

Revision ID: 0011_event_contract_limits
Revises: 0010_wider_money
"""

import importlib.util
from pathlib import Path

from alembic import op

revision = "0011_event_contract_limits"
down_revision = "0010_wider_money"
branch_labels = None
depends_on = None

MAX_AMOUNT = "100000000000"
MAX_DURATION_MINUTES = "100000000"
MAX_ID_LENGTH = 255
EARLIEST_TIMESTAMP = "2000-01-01"
MAX_TIMESTAMP_AHEAD = "1 day"
CLOCK_SKEW = "5 minutes"

FUNCTIONS = f"""
CREATE OR REPLACE FUNCTION analytics_is_id(value jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(jsonb_typeof(value) = 'string' AND (value #>> '{{}}') <> ''
                    AND length(value #>> '{{}}') <= {MAX_ID_LENGTH}, false)
$$;

CREATE FUNCTION analytics_event_problem(
    event_type text, event_data jsonb, user_id text, "timestamp" timestamp, created_at timestamp,
    checked_at timestamp
) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN event_type NOT IN (
            'user_signup', 'user_login', 'session_started', 'page_view',
            'subscription_started', 'subscription_changed', 'subscription_cancelled',
            'payment_completed', 'payment_failed', 'payment_refunded',
            'tournament_created', 'tournament_started', 'tournament_completed',
            'tournament_cancelled', 'player_registered'
        ) THEN NULL
        WHEN created_at > checked_at + interval '{CLOCK_SKEW}' THEN 'created_at in the future'
        WHEN NOT isfinite("timestamp") OR "timestamp" < timestamp '{EARLIEST_TIMESTAMP}'
             OR "timestamp" > created_at + interval '{MAX_TIMESTAMP_AHEAD}' THEN 'bad timestamp'
        WHEN jsonb_typeof(event_data) IS DISTINCT FROM 'object' THEN 'event_data is not an object'
        WHEN event_type IN ('user_signup', 'subscription_started', 'subscription_changed',
                            'subscription_cancelled', 'player_registered')
             AND coalesce(user_id, '') = '' THEN 'missing user_id'
        WHEN length(user_id) > {MAX_ID_LENGTH} THEN 'bad user_id'
        WHEN event_type LIKE 'subscription\\_%' AND NOT analytics_is_id(event_data -> 'subscription_id')
            THEN 'bad subscription_id'
        WHEN event_type = 'subscription_started' AND NOT analytics_is_id(event_data -> 'plan_id')
            THEN 'bad plan_id'
        WHEN event_type = 'subscription_changed' AND event_data ? 'plan_id'
             AND NOT analytics_is_id(event_data -> 'plan_id') THEN 'bad plan_id'
        WHEN event_type IN ('subscription_started', 'subscription_changed')
             AND NOT coalesce(analytics_amount(event_data) >= 0
                              AND analytics_amount(event_data) < {MAX_AMOUNT}, false)
            THEN 'bad amount'
        WHEN event_type IN ('subscription_started', 'subscription_changed')
             AND (jsonb_typeof(event_data -> 'interval') IS DISTINCT FROM 'string'
                  OR event_data ->> 'interval' NOT IN ('week', 'month', 'quarter', 'year'))
            THEN 'bad interval'
        WHEN event_type LIKE 'payment\\_%' AND NOT analytics_is_id(event_data -> 'payment_id')
            THEN 'bad payment_id'
        WHEN event_type LIKE 'payment\\_%'
             AND NOT coalesce(analytics_amount(event_data) > 0
                              AND analytics_amount(event_data) < {MAX_AMOUNT}, false)
            THEN 'bad amount'
        WHEN event_type = 'payment_completed' AND event_data ? 'subscription_id'
             AND NOT analytics_is_id(event_data -> 'subscription_id') THEN 'bad subscription_id'
        WHEN (event_type LIKE 'tournament\\_%' OR event_type = 'player_registered'
              OR event_type = 'payment_completed' AND event_data ? 'tournament_id')
             AND NOT analytics_is_id(event_data -> 'tournament_id') THEN 'bad tournament_id'
        WHEN event_type = 'tournament_created' AND NOT analytics_is_id(event_data -> 'format')
            THEN 'bad format'
        WHEN event_type = 'tournament_completed' AND event_data ? 'duration_minutes'
             AND NOT coalesce(analytics_number(event_data -> 'duration_minutes') >= 0
                              AND analytics_number(event_data -> 'duration_minutes')
                                  < {MAX_DURATION_MINUTES}, false)
            THEN 'bad duration_minutes'
    END
$$;

CREATE FUNCTION analytics_event_problem(
    event_type text, event_data jsonb, user_id text, "timestamp" timestamp, created_at timestamp
) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT analytics_event_problem(event_type, event_data, user_id, "timestamp", created_at,
                                   statement_timestamp() AT TIME ZONE 'UTC')
$$;
"""


def _revision_0004():
    path = Path(__file__).with_name("0004_event_contract.py")
    spec = importlib.util.spec_from_file_location("event_contract_0004", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upgrade() -> None:
    op.execute("DROP FUNCTION analytics_event_problem(text, jsonb, text)")
    op.execute(FUNCTIONS)


def downgrade() -> None:
    op.execute("DROP FUNCTION analytics_event_problem(text, jsonb, text, timestamp, timestamp)")
    op.execute(
        "DROP FUNCTION analytics_event_problem(text, jsonb, text, timestamp, timestamp, timestamp)"
    )
    for function in ("analytics_is_id", "analytics_amount", "analytics_number"):
        op.execute(f"DROP FUNCTION {function}(jsonb)")
    # 0004's functions exactly as it created them.
    op.execute(_revision_0004().FUNCTIONS)
