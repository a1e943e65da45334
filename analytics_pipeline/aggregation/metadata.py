"""What a run reports as metadata: what it wrote, what changed, what it absorbed, what it skipped.

Absorb counts are named one way in every domain. A state's absorb counts what it did under names
that say what was counted and what happened to it, `<things>_<past participle>`
(`events_added`, `events_read`, `tournaments_updated`, `users_added_or_moved`,
`user_months_added`); the state asset's own materialization reports them under those names. An
aggregate's run absorbs its states first and reports the same counts prefixed by the state's name,
`<state>/<count>` (`subscription_history/events_added`, `tournament_history/events_read`), as
`absorb_metadata` names them, so that two states counting the same thing do not collide and one
count reads the same in both places.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence

import dagster as dg

from .bounds import HeldBackTenants

# At most this many partitions without rows are named in a run's metadata.
EMPTY_PARTITION_EXAMPLES = 20


def absorb_metadata(counts_by_state: Mapping[str, Mapping[str, int]]) -> dict[str, int]:
    """Run metadata of the absorbs of an aggregate's run: each state's counts as `<state>/<count>`."""
    return {f"{state}/{name}": value for state, counts in counts_by_state.items() for name, value in counts.items()}


def malformed_metadata(rows: Iterable) -> dict[str, object]:
    """Run metadata from (tenant_id, event_type, problem, events) rows."""
    rows = list(rows)
    by_type: Counter[str] = Counter()
    by_tenant_and_type: Counter[str] = Counter()
    by_problem: Counter[str] = Counter()
    for tenant_id, event_type, problem, events in rows:
        by_type[event_type] += events
        by_tenant_and_type[f"{tenant_id}/{event_type}"] += events
        by_problem[f"{event_type}: {problem}"] += events
    return {
        "malformed_events": int(sum(by_type.values())),
        "malformed_events_by_type": dg.MetadataValue.json(dict(sorted(by_type.items()))),
        "malformed_events_by_tenant_and_type": dg.MetadataValue.json(
            dict(sorted(by_tenant_and_type.items()))
        ),
        "malformed_events_by_reason": dg.MetadataValue.json(dict(sorted(by_problem.items()))),
    }


def out_of_range_metadata(held: HeldBackTenants) -> dict[str, object]:
    """Run metadata on the tenants left out of the write."""
    return {
        "tenants_not_written": dg.MetadataValue.json(list(held.tenants)),
        "values_out_of_range": held.values,
        "values_out_of_range_examples": dg.MetadataValue.json(
            [
                {"tenant_id": t, "period": period, "column": column, "value": str(value)}
                for t, period, column, value in held.examples
            ]
        ),
    }


def run_metadata(
    *,
    window: str,
    written: Mapping[str, object],
    inputs: str,
    empty_partitions: Sequence[str],
    changed: Collection[str],
    absorbed: Mapping[str, Mapping[str, int]],
    malformed: Iterable,
    held: HeldBackTenants,
    duration_seconds: float,
) -> dict[str, object]:
    """The metadata of one run of an aggregate over `window` (runs.py): what `written` says of
    the write, the partitions left without rows, how many tenants' rows changed, the absorbs'
    counts by state, the malformed events skipped and the tenants held back."""
    metadata: dict[str, object] = {"window": window, **written}
    if not written.get("rows_written"):
        # Nothing is skipped: the window was recomputed and had nothing to show.
        metadata["no_rows"] = f"no {inputs} in {window}: no rows written"
    metadata["partitions_without_rows"] = len(empty_partitions)
    if empty_partitions:
        metadata["partitions_without_rows_examples"] = dg.MetadataValue.json(
            list(empty_partitions[:EMPTY_PARTITION_EXAMPLES])
        )
    metadata["tenants_changed"] = len(changed)
    metadata.update(absorb_metadata(absorbed))
    metadata.update(malformed_metadata(malformed))
    metadata.update(out_of_range_metadata(held))
    metadata["duration_seconds"] = round(duration_seconds, 3)
    return metadata
