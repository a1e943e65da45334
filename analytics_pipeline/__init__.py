"""analytics-pipeline: revenue, retention and tournament metrics from a multi-tenant event stream."""

import warnings

from dagster_shared.utils.warnings import BetaWarning, PreviewWarning

# The aggregates rely on single-run backfill policies and name their owners on purpose; Dagster's
# notice that these parameters are beta would otherwise open the log of every process loading them.
for _category in (BetaWarning, PreviewWarning):
    warnings.filterwarnings("ignore", message=r"Parameter `(backfill_policy|owners)` of", category=_category)
