"""Cohorts: `user_signups`, `user_activity_months` and `user_cohorts` (docs/metrics.md#user_cohorts) and
`user_cohort_segments` (docs/metrics.md#user_cohort_segments)."""

from .definitions import DOMAIN, defs

__all__ = ["DOMAIN", "defs"]
