SELECT id, 'payment_success_count ' || payment_success_count || ' > payment_count ' || payment_count
FROM revenue_check_rows
WHERE payment_success_count > payment_count
ORDER BY id
