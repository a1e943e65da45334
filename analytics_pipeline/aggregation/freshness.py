"""How old an aggregate may get: the windows a domain declares for each aggregate it publishes
(Domain.aggregates), which give its Dagster freshness policy and the age after which the Dashboard
API and the dashboard call its data stale (docs/operations.md#freshness).

The windows follow what guarantees a materialization, not what usually causes one: the
event-driven sensor runs an aggregate within a minute of new events, but with no new events it
launches nothing, while the schedules run whatever happened (the hourly schedule the aggregates
tagged hourly, `revenue_aggregates`, `revenue_segments` and `tournament_aggregates`, at five past
every hour; the daily schedule `user_cohorts` at 02:30 UTC). So:

- warn: the scheduled run is late (an hourly one by 15 minutes, the daily one by an hour);
  the API's `data_stale_after` and the dashboard's "stale" flag start here;
- fail: no materialization where one scheduled run should have landed with a margin: the
  aggregate is older than the pipeline promises.

Dagster evaluates a policy against the asset's last materialization of any partition; the API
against `aggregate_freshness`, which every run writes in its transaction. Both move with every
run, including one that changed no row.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import dagster as dg


@dataclass(frozen=True)
class FreshnessWindows:
    warn: dt.timedelta
    fail: dt.timedelta

    @property
    def policy(self) -> dg.FreshnessPolicy:
        return dg.FreshnessPolicy.time_window(fail_window=self.fail, warn_window=self.warn)


HOURLY_SCHEDULE = FreshnessWindows(warn=dt.timedelta(minutes=75), fail=dt.timedelta(hours=2))
DAILY_SCHEDULE = FreshnessWindows(warn=dt.timedelta(hours=25), fail=dt.timedelta(hours=26))
