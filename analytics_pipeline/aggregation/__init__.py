"""How any domain's asset runs: the run skeleton, checks and value bounds, derived state in commit
order, periods and partitions, the declarations, and the machinery built from them (docs/architecture.md)."""
