"""The asset checks of every aggregate: their specs, how a run evaluates them, their results.

Each run of an aggregate evaluates, over the rows it wrote: the domain's rule checks (ERROR, one
SQL statement each), the WARN check on the malformed events its window skipped, and the ERROR check
on values no column could hold (bounds.py). `Aggregate.check_stored_rows` (runs.py) evaluates the
first two on stored rows outside a run.

How checks are named, in every domain:

- A check's name states the rule the asset's rows keep, in snake_case (`ltv_never_decreases`,
  `completed_count_at_most_tournament_count`, `rows_match_tournament_history`, `mrr_bridge`). It
  never repeats its asset's or its domain's name: Dagster shows the asset beside it, and the
  alerts spell `asset:check`.
- A check that several assets have carries one name on all of them, defined once: here
  `no_malformed_events` (WARN) and `values_fit_columns` (ERROR) on every aggregate, and
  `absorbs_every_committed_event` (ERROR) on every derived state (reconciliation.py).
- In code a check's name is a module constant named after it, upper-cased with the suffix
  `_CHECK` (`LTV_NEVER_DECREASES_CHECK = "ltv_never_decreases"`); a domain's are in its checks.py.
- A rule check's SQL is the file `sql/checks/<name>.sql` of its domain, read when the domain is
  imported (`rule_checks`), so a name without its file (a rename on one side only) fails at import
  instead of passing forever.

The metadata a run reports, and how the absorbs' counts are named, is in metadata.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import dagster as dg
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .bounds import HeldBackTenants
from .metadata import malformed_metadata

NO_MALFORMED_EVENTS_CHECK = "no_malformed_events"

VALUES_FIT_COLUMNS_CHECK = "values_fit_columns"
VALUES_FIT_COLUMNS_DESCRIPTION = (
    "Every value the run computed fits its column. A tenant with one that does not (money at or past "
    "10^16 after rounding to cents, a count past the integer range) is left out of the write, its old "
    "rows kept; the check names tenant, period, column and value."
)


@dataclass(frozen=True)
class RuleCheck:
    """An ERROR check over the rows a run wrote. `sql` returns one row per offending aggregate
    row: (which row, what is wrong)."""

    name: str
    description: str
    sql: str


def rule_checks(load: Callable[[str], str], descriptions: dict[str, str]) -> tuple[RuleCheck, ...]:
    """The rule checks {name: description} of a domain, each with its `sql/checks/<name>.sql`."""
    return tuple(RuleCheck(name, text, load(f"checks/{name}")) for name, text in descriptions.items())


def check_specs(asset: str, checks: Iterable[RuleCheck], malformed_description: str) -> list[dg.AssetCheckSpec]:
    """The aggregate's check specs: its rule checks, then `no_malformed_events` (described by the
    domain: which events it counts), then `values_fit_columns`."""
    return [
        *(dg.AssetCheckSpec(c.name, asset=asset, description=c.description) for c in checks),
        dg.AssetCheckSpec(NO_MALFORMED_EVENTS_CHECK, asset=asset, description=malformed_description),
        dg.AssetCheckSpec(VALUES_FIT_COLUMNS_CHECK, asset=asset, description=VALUES_FIT_COLUMNS_DESCRIPTION),
    ]


def rule_check_result(check_name: str, offending: list[str]) -> dg.AssetCheckResult:
    """An ERROR check over the rows a run wrote: passes when no row breaks the rule."""
    return dg.AssetCheckResult(
        check_name=check_name,
        passed=not offending,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "offending_rows": len(offending),
            "examples": dg.MetadataValue.json(offending[:20]),
        },
    )


def malformed_check_result(malformed: Iterable) -> dg.AssetCheckResult:
    """The WARN check on malformed events in the window, from (tenant_id, event_type, problem,
    events) rows: they were skipped, and here they are counted."""
    metadata = malformed_metadata(malformed)
    return dg.AssetCheckResult(
        check_name=NO_MALFORMED_EVENTS_CHECK,
        passed=metadata["malformed_events"] == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata=metadata,
    )


def values_fit_check_result(held: HeldBackTenants) -> dg.AssetCheckResult:
    """The ERROR check on values no column could hold."""
    return dg.AssetCheckResult(
        check_name=VALUES_FIT_COLUMNS_CHECK,
        passed=not held.values,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "tenants_not_written": dg.MetadataValue.json(list(held.tenants)),
            "offending_rows": held.values,
            "examples": dg.MetadataValue.json(
                [f"tenant {t}, {period}: {column} = {value}" for t, period, column, value in held.examples]
            ),
        },
    )


def evaluate_checks(
    conn: Connection, checks: Iterable[RuleCheck], params: dict, malformed: list
) -> list[dg.AssetCheckResult]:
    """The rule checks' results over the rows of the window `params`, then the malformed-events
    check's over `malformed`."""
    results = [
        rule_check_result(c.name, [f"{row}: {why}" for row, why in conn.execute(sa.text(c.sql), params).all()])
        for c in checks
    ]
    return [*results, malformed_check_result(malformed)]
