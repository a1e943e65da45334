"""Revenue: subscription history, payments and `revenue_aggregates` (docs/metrics.md#revenue_aggregates)."""

from .assets import defs

__all__ = ["defs"]
