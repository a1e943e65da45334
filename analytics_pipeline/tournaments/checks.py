"""The checks of tournament_aggregates (docs/metrics.md#tournament_aggregates), named as
analytics_pipeline/aggregation/checks.py says; each rule's SQL is sql/checks/<name>.sql."""

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..aggregation.checks import check_specs, rule_checks
from ..core.schema import tournament_aggregates as tournament_aggregates_table
from ..core.sql import sql_loader

load = sql_loader(__package__)

COMPLETION_RATE_BETWEEN_0_AND_100_CHECK = "completion_rate_between_0_and_100"
COMPLETED_COUNT_AT_MOST_TOURNAMENT_COUNT_CHECK = "completed_count_at_most_tournament_count"
ROWS_MATCH_TOURNAMENT_HISTORY_CHECK = "rows_match_tournament_history"

RULE_CHECKS = rule_checks(
    load,
    {
        COMPLETION_RATE_BETWEEN_0_AND_100_CHECK: (
            "completion_rate is within 0..100 and no count, average or revenue is negative."
        ),
        COMPLETED_COUNT_AT_MOST_TOURNAMENT_COUNT_CHECK: "completed_count never exceeds tournament_count.",
        ROWS_MATCH_TOURNAMENT_HISTORY_CHECK: (
            "Counts, players and revenue of every written row equal those of the period's tournaments "
            "in tournament_history, with no row missing or extra."
        ),
    },
)
MALFORMED_EVENTS_DESCRIPTION = (
    "No malformed tournament, registration or tournament payment event happened in the window "
    "(WARN; counts by tenant and type). Malformed events are left out of every metric."
)

# The asset is named after its table.
CHECK_SPECS = check_specs(tournament_aggregates_table.name, RULE_CHECKS, MALFORMED_EVENTS_DESCRIPTION)

def malformed_tournament_events(conn: Connection, params: dict) -> list:
    """(tenant_id, event_type, problem, events) of malformed events tournament_aggregates reads."""
    return conn.execute(sa.text(load("malformed")), params).all()
