"""The Dashboard API: read-only JSON and CSV of the aggregates for one tenant per token, cached
in Redis, and the dashboard page it serves (docs/api.md)."""
