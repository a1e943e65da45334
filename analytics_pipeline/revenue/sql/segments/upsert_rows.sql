-- Write the rows the run computed ({rows}); a rerun or an overlapping run updates them in place
-- (docs/metrics.md#revenue_segments). A stored row whose values did not change is left as it is:
-- an hourly run recomputes every value's running week, month, quarter and year, and most of them
-- had no movement since the last run. The computed rows no row is stored for yet are inserted as
-- plain inserts: INSERT ... ON CONFLICT would probe the unique key once more for each of a
-- backfill's million rows, and the run holds the aggregate's lock, so no other run inserts them
-- meanwhile. Whether a row is stored is looked up in the keys the window held before the write
-- (segment_stored_keys, segments.py): a table whose size the planner knows and that the insert
-- does not grow, so that no plan scans the table it inserts into once per row. The rows go in as
-- computed, not sorted by the key first: sorting a backfill's million rows costs more than the
-- index gains from ordered inserts (bench/README.md). Stored rows are updated among the touched
-- periods' of the computed rows' period types (the day rows' or the longer periods'), found by
-- the table's period index.
WITH updated AS (
    UPDATE revenue_segments AS r
    SET id = n.tenant_id || ':' || n.period_type || ':' || n.period_start || ':' || n.dimension || ':' || n.value,
        period_end = n.period_end,
        mrr = n.mrr,
        arr = n.mrr * 12,
        new_revenue = n.new_revenue,
        reactivation_revenue = n.reactivation_revenue,
        expansion_revenue = n.expansion_revenue,
        contraction_revenue = n.contraction_revenue,
        churned_revenue = n.churned_revenue,
        transfer_in_revenue = n.transfer_in_revenue,
        transfer_out_revenue = n.transfer_out_revenue,
        active_customers = n.active_customers,
        new_customers = n.new_customers,
        reactivated_customers = n.reactivated_customers,
        churned_customers = n.churned_customers,
        transferred_in_customers = n.transferred_in_customers,
        transferred_out_customers = n.transferred_out_customers,
        updated_at = now() AT TIME ZONE 'UTC'
    FROM {rows} AS n
    WHERE r.period_start = ANY (ARRAY(SELECT t.period_start FROM ({touched_periods}) AS t))
      AND r.period_type = ANY (ARRAY(SELECT DISTINCT c.period_type FROM {rows} AS c))
      AND r.tenant_id = n.tenant_id AND r.period_type = n.period_type AND r.dimension = n.dimension
      AND r.period_start = n.period_start AND r.value = n.value
      -- Compared as they would be stored: money rounded to cents by its column.
      AND (r.period_end, r.mrr, r.new_revenue, r.reactivation_revenue, r.expansion_revenue,
           r.contraction_revenue, r.churned_revenue, r.transfer_in_revenue, r.transfer_out_revenue,
           r.active_customers, r.new_customers, r.reactivated_customers, r.churned_customers,
           r.transferred_in_customers, r.transferred_out_customers)
          IS DISTINCT FROM
          (n.period_end, CAST(n.mrr AS numeric(18, 2)), CAST(n.new_revenue AS numeric(18, 2)),
           CAST(n.reactivation_revenue AS numeric(18, 2)), CAST(n.expansion_revenue AS numeric(18, 2)),
           CAST(n.contraction_revenue AS numeric(18, 2)), CAST(n.churned_revenue AS numeric(18, 2)),
           CAST(n.transfer_in_revenue AS numeric(18, 2)), CAST(n.transfer_out_revenue AS numeric(18, 2)),
           n.active_customers, n.new_customers, n.reactivated_customers, n.churned_customers,
           n.transferred_in_customers, n.transferred_out_customers)
)
INSERT INTO revenue_segments (
    id, tenant_id, period_start, period_end, period_type, dimension, value, mrr, arr,
    new_revenue, reactivation_revenue, expansion_revenue, contraction_revenue, churned_revenue,
    transfer_in_revenue, transfer_out_revenue,
    active_customers, new_customers, reactivated_customers, churned_customers,
    transferred_in_customers, transferred_out_customers, updated_at
)
SELECT
    n.tenant_id || ':' || n.period_type || ':' || n.period_start || ':' || n.dimension || ':' || n.value,
    n.tenant_id, n.period_start, n.period_end, n.period_type, n.dimension, n.value, n.mrr, n.mrr * 12,
    n.new_revenue, n.reactivation_revenue, n.expansion_revenue, n.contraction_revenue, n.churned_revenue,
    n.transfer_in_revenue, n.transfer_out_revenue,
    n.active_customers, n.new_customers, n.reactivated_customers, n.churned_customers,
    n.transferred_in_customers, n.transferred_out_customers,
    now() AT TIME ZONE 'UTC'
FROM {rows} AS n
WHERE NOT EXISTS (
    SELECT 1 FROM segment_stored_keys AS k
    WHERE k.tenant_id = n.tenant_id AND k.period_type = n.period_type AND k.dimension = n.dimension
      AND k.period_start = n.period_start AND k.value = n.value
)
