-- The comprehensive report's revenue by plan (docs/reports.md#revenue-by-plan), from the
-- revenue_segments rows of the plan dimension (docs/metrics.md#revenue_segments): one row per plan
-- that has a row in the report's period, the :top plans of the largest MRR (ties in plan order)
-- one by one, the others summed into one `other` row (unless only one is left: then it is shown
-- too), and a `total` row of all of them, which equals revenue_aggregates' figures (the identity
-- of docs/metrics.md#segments).
--
-- As in revenue_summary.sql, MRR and active customers are balances: the plan's at the end of the
-- side's last period (:last_start, :previous_last_start), 0 when the plan has no row there (a plan
-- without a row has no MRR); the movements, transfers (docs/metrics.md#segment-movements) and
-- churned customers are flows, summed over the report's period. A plan with MRR at the end of the
-- previous period has a row in this one (its MRR or its churn), so the previous MRR of the rows
-- adds up to the tenant's. The change of MRR is in percent (analytics_change_pct, migration 0020).
WITH plans AS (
    SELECT s.value AS plan,
           coalesce(sum(s.mrr) FILTER (WHERE s.period_start = :last_start), 0) AS mrr,
           coalesce(sum(s.mrr) FILTER (WHERE s.period_start = :previous_last_start), 0) AS previous_mrr,
           coalesce(sum(s.new_revenue) FILTER (WHERE s.period_start >= :start), 0) AS new_revenue,
           coalesce(sum(s.reactivation_revenue) FILTER (WHERE s.period_start >= :start), 0) AS reactivation_revenue,
           coalesce(sum(s.expansion_revenue) FILTER (WHERE s.period_start >= :start), 0) AS expansion_revenue,
           coalesce(sum(s.contraction_revenue) FILTER (WHERE s.period_start >= :start), 0) AS contraction_revenue,
           coalesce(sum(s.churned_revenue) FILTER (WHERE s.period_start >= :start), 0) AS churned_revenue,
           coalesce(sum(s.transfer_in_revenue) FILTER (WHERE s.period_start >= :start), 0) AS transfer_in_revenue,
           coalesce(sum(s.transfer_out_revenue) FILTER (WHERE s.period_start >= :start), 0) AS transfer_out_revenue,
           coalesce(sum(s.active_customers) FILTER (WHERE s.period_start = :last_start), 0) AS active_customers,
           coalesce(sum(s.churned_customers) FILTER (WHERE s.period_start >= :start), 0) AS churned_customers
    FROM revenue_segments AS s
    WHERE s.tenant_id = :tenant_id AND s.period_type = :period_type AND s.dimension = 'plan'
      AND s.period_start BETWEEN :previous_start AND :end
    GROUP BY s.value
    HAVING bool_or(s.period_start >= :start)
),
ranked AS (
    SELECT p.*,
           row_number() OVER (ORDER BY p.mrr DESC, p.plan) > :top AND count(*) OVER () > :top + 1 AS is_other,
           row_number() OVER (ORDER BY p.mrr DESC, p.plan) AS position
    FROM plans AS p
),
slotted AS (
    SELECT r.*, CASE WHEN r.is_other THEN :top + 1 ELSE r.position END AS slot FROM ranked AS r
),
grouped AS (
    SELECT
        CASE WHEN grouping(slot) = 1 THEN 'total' WHEN bool_and(is_other) THEN 'other' ELSE 'plan' END AS kind,
        CASE WHEN grouping(slot) = 0 AND NOT bool_and(is_other) THEN min(plan) END AS plan,
        count(*) AS plan_count,
        sum(mrr) AS mrr, sum(previous_mrr) AS previous_mrr,
        sum(new_revenue) AS new_revenue, sum(reactivation_revenue) AS reactivation_revenue,
        sum(expansion_revenue) AS expansion_revenue, sum(contraction_revenue) AS contraction_revenue,
        sum(churned_revenue) AS churned_revenue,
        sum(transfer_in_revenue) AS transfer_in_revenue, sum(transfer_out_revenue) AS transfer_out_revenue,
        sum(active_customers) AS active_customers, sum(churned_customers) AS churned_customers,
        grouping(slot) AS is_total, slot
    FROM slotted
    GROUP BY GROUPING SETS ((slot), ())
    HAVING count(*) > 0
)
SELECT kind, plan, plan_count, mrr, previous_mrr, analytics_change_pct(mrr, previous_mrr) AS change_pct,
       new_revenue, reactivation_revenue, expansion_revenue, contraction_revenue, churned_revenue,
       transfer_in_revenue, transfer_out_revenue,
       active_customers::bigint AS active_customers, churned_customers::bigint AS churned_customers
FROM grouped
ORDER BY is_total, slot
