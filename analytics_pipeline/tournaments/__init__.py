"""Tournaments: `tournament_history` and `tournament_aggregates` (docs/metrics.md#tournament_aggregates)."""

from .definitions import DOMAIN, defs

__all__ = ["DOMAIN", "defs"]
