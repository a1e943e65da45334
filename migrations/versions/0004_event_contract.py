"""The event contract (docs/events.md): an index on analytics_events.created_at, and the SQL
functions that decide whether an event is malformed.

`analytics_event_problem(event_type, event_data, user_id)` returns NULL for a valid event (and for
an unknown event_type, which every metric ignores) and otherwise a short reason. It is a single SQL
expression, IMMUTABLE, so PostgreSQL inlines it into the aggregation queries. The Python twin is
analytics_pipeline/core/events.py; a test runs both over one table of cases.

Revision ID: 0004_event_contract
Revises: 0003_row_level_security
"""

from alembic import op

revision = "0004_event_contract"
down_revision = "0003_row_level_security"
branch_labels = None
depends_on = None

# A numeric string: optional sign, digits with an optional fraction, optional short exponent
# (a longer one could overflow PostgreSQL's numeric input). No NaN or Infinity.
NUMBER_PATTERN = r"^[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][+-]?[0-9]{1,3})?$"

# Amounts must fit the aggregates' DECIMAL(10,2).
MAX_AMOUNT = "100000000"

FUNCTIONS = f"""
CREATE FUNCTION analytics_number(value jsonb) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE jsonb_typeof(value)
        WHEN 'number' THEN (value #>> '{{}}')::numeric
        WHEN 'string' THEN CASE WHEN (value #>> '{{}}') ~ '{NUMBER_PATTERN}'
                                THEN (value #>> '{{}}')::numeric END
    END
$$;

CREATE FUNCTION analytics_amount(event_data jsonb) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT analytics_number(event_data -> 'amount')
$$;

CREATE FUNCTION analytics_is_id(value jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(jsonb_typeof(value) = 'string' AND (value #>> '{{}}') <> '', false)
$$;

CREATE FUNCTION analytics_event_problem(event_type text, event_data jsonb, user_id text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN event_type NOT IN (
            'user_signup', 'user_login', 'session_started', 'page_view',
            'subscription_started', 'subscription_changed', 'subscription_cancelled',
            'payment_completed', 'payment_failed', 'payment_refunded',
            'tournament_created', 'tournament_started', 'tournament_completed',
            'tournament_cancelled', 'player_registered'
        ) THEN NULL
        WHEN jsonb_typeof(event_data) IS DISTINCT FROM 'object' THEN 'event_data is not an object'
        WHEN event_type IN ('user_signup', 'subscription_started', 'subscription_changed',
                            'subscription_cancelled', 'player_registered')
             AND coalesce(user_id, '') = '' THEN 'missing user_id'
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
                              AND analytics_number(event_data -> 'duration_minutes') < {MAX_AMOUNT}, false)
            THEN 'bad duration_minutes'
    END
$$;
"""


def upgrade() -> None:
    op.create_index("analytics_events_created_at_idx", "analytics_events", ["created_at"])
    op.execute(FUNCTIONS)


def downgrade() -> None:
    op.execute("DROP FUNCTION analytics_event_problem(text, jsonb, text)")
    op.execute("DROP FUNCTION analytics_is_id(jsonb)")
    op.execute("DROP FUNCTION analytics_amount(jsonb)")
    op.execute("DROP FUNCTION analytics_number(jsonb)")
    op.drop_index("analytics_events_created_at_idx", table_name="analytics_events")
