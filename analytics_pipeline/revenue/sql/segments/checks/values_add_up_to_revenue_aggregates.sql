-- values_add_up_to_revenue_aggregates: the breaks of the identity (identity_breaks.sql), naming
-- the tenant, period, dimension and column.
SELECT b.which, b.why FROM ({identity_breaks}) AS b ORDER BY 1, 2
