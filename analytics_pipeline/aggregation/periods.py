"""What every time-partitioned aggregate shares: the period types and the periods a window of days
touches."""

from __future__ import annotations

PERIOD_TYPES = ("day", "week", "month", "quarter", "year")

# Every (period_type, period_start, period_end) that contains a day of [:window_start, :window_end).
# Weeks are ISO weeks (date_trunc('week') is Monday); period_end is the period's last day,
# inclusive, even while the period is still running (docs/metrics.md#periods).
TOUCHED_PERIODS_SQL = """
SELECT DISTINCT
    p.period_type,
    date_trunc(p.period_type, d)::date AS period_start,
    (date_trunc(p.period_type, d) + p.length - interval '1 day')::date AS period_end
FROM generate_series(CAST(:window_start AS date), CAST(:window_end AS date) - 1, interval '1 day') AS d
CROSS JOIN (
    VALUES ('day', interval '1 day'), ('week', interval '7 days'), ('month', interval '1 month'),
           ('quarter', interval '3 months'), ('year', interval '1 year')
) AS p(period_type, length)
"""

