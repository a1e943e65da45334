"""Cohorts: `user_signups`, `user_activity_months` and `user_cohorts` (docs/metrics.md#user_cohorts)."""

from .definitions import DOMAIN, defs

__all__ = ["DOMAIN", "defs"]
