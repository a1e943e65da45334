"""Revenue: subscription history, payments, `revenue_aggregates` (docs/metrics.md#revenue_aggregates)
and `revenue_segments` (docs/metrics.md#revenue_segments)."""

from .definitions import DOMAIN, defs

__all__ = ["DOMAIN", "defs"]
