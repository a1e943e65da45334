"""Revenue: subscription history, payments and `revenue_aggregates` (docs/metrics.md#revenue_aggregates)."""

from .definitions import DOMAIN, defs

__all__ = ["DOMAIN", "defs"]
