"""Tournaments: `tournament_history` and `tournament_aggregates` (docs/metrics.md#tournament_aggregates)."""

from .assets import defs

__all__ = ["defs"]
