SELECT id, 'arr ' || arr || ' <> 12 * mrr ' || mrr
FROM revenue_check_rows
WHERE arr <> mrr * 12
ORDER BY id
