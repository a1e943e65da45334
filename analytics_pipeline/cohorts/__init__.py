"""Cohorts: `user_signups`, `user_activity_months` and `user_cohorts` (docs/metrics.md#user_cohorts)."""

from .assets import defs

__all__ = ["defs"]
