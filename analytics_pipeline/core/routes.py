"""The Dashboard API's public paths that other parts of the project link to: a report email links
the CSV of each aggregate it shows and the unsubscribe page. The API serves these paths and the
reports build their links from them, so that the two cannot drift apart (docs/api.md)."""

REVENUE = "/v1/revenue"
REVENUE_SEGMENTS = "/v1/revenue/segments"
TOURNAMENTS = "/v1/tournaments"
COHORTS = "/v1/cohorts"
UNSUBSCRIBE = "/v1/unsubscribe"

# The endpoint that returns an aggregate table's rows (as CSV with `format=csv`).
TABLE_ENDPOINTS = {"revenue_aggregates": REVENUE, "revenue_segments": REVENUE_SEGMENTS,
                   "tournament_aggregates": TOURNAMENTS, "user_cohorts": COHORTS}
