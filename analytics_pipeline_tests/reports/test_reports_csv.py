"""The reports' CSV attachments: a text cell cannot become a spreadsheet formula, numbers are plain
decimals, rates are fractions, and every attachment reads back."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from decimal import Decimal

import pytest

from analytics_pipeline.reports.delivery import deliver_scheduled
from analytics_pipeline.reports.render import csv_text

from .support import NOW, add_report


@pytest.mark.parametrize("prefix", ["=", "+", "-", "@", "\t", "\r"])
def test_a_text_cell_cannot_become_a_formula(prefix):
    text = f"{prefix}cmd|' /C calc'!A0"
    written = csv_text(["period_start", "most_popular_format", "revenue"],
                       [(dt.date(2025, 4, 1), text, Decimal("-12.50"))])
    [header, row] = list(csv.reader(io.StringIO(written, newline="")))
    assert header == ["period_start", "most_popular_format", "revenue"]
    assert row == ["2025-04-01", "'" + text, "-12.50"]


PLAIN_NUMBER = re.compile(r"-?\d+(\.\d+)?")
RATES = {"retention_rate", "completion_rate", "logo_churn_rate", "gross_mrr_churn_rate", "net_mrr_churn_rate",
         "grr", "nrr", "ttm_nrr", "ttm_grr"}
TEXT = {"period_type", "period_start", "period_end", "cohort_month", "most_popular_format", "currency", "plan"}


@pytest.mark.usefixtures("delivery_settings")
def test_every_csv_reads_back_as_plain_decimals_with_rates_as_fractions(tenants, database, mail, inbox):
    with tenants.begin() as conn:
        add_report(conn, "r1", recipients=["ann@example.com"])
    assert deliver_scheduled(database, mail, "r1", now=NOW).status == "sent"
    [message] = inbox.messages()
    files = {p.get_filename().split("_2025")[0]: list(csv.DictReader(io.StringIO(p.get_content(), newline="")))
             for p in message.iter_attachments() if p.get_filename().endswith(".csv")}
    assert set(files) == {"revenue_aggregates", "tournament_aggregates", "user_cohorts", "revenue_segments"}
    for name, rows in files.items():
        assert rows, name
        for row in rows:
            assert row["currency"] == "USD"
            for column, cell in row.items():
                if column in TEXT or cell == "":
                    continue
                assert PLAIN_NUMBER.fullmatch(cell), (name, column, cell)  # never 0E-20 or 1E+1
                if "." in cell and len(cell.split(".")[1]) > 2:
                    assert not cell.endswith("0"), (name, column, cell)  # no zeros past the cents
                if column in RATES and column not in ("nrr", "ttm_nrr", "net_mrr_churn_rate"):
                    assert Decimal(0) <= Decimal(cell) <= 1, (name, column, cell)  # a fraction, not a percent

    # The rates as worked out from the counts the fixture inserted: 8 of 10 tournaments completed
    # in week 45, 5 of 5 in week 44; cohort retention = retained / size.
    assert {r["period_start"]: Decimal(r["completion_rate"]) for r in files["tournament_aggregates"]} == {
        "2025-11-03": Decimal("0.8"), "2025-10-27": Decimal("1")}
    assert {(r["cohort_month"], r["month_number"]): Decimal(r["retention_rate"]) for r in files["user_cohorts"]} == {
        ("2025-09-01", "0"): 1, ("2025-09-01", "1"): Decimal("0.4"), ("2025-09-01", "2"): Decimal("0.3"),
        ("2025-10-01", "0"): 1, ("2025-10-01", "1"): Decimal("0.5"), ("2025-11-01", "0"): 1}
    # Amounts keep their cents: the week's MRR of 12,500 reads back as 12500.00.
    [week] = [r for r in files["revenue_aggregates"] if (r["period_type"], r["period_start"]) == ("week", "2025-11-03")]
    assert (week["mrr"], week["refund_amount"]) == ("12500.00", "150.00")


@pytest.mark.parametrize("value, written", [
    (Decimal("0E-20"), "0.00"), (Decimal("1.00000000000000000000"), "1.00"), (Decimal("1E+1"), "10"),
    (Decimal("0.14285714285714285714"), "0.14285714285714285714"), (Decimal("12500.00"), "12500.00"),
    (Decimal("-0.0200000000"), "-0.02"), (Decimal("40"), "40"), (Decimal("0.8000"), "0.80"),
    (Decimal("1.5E-7"), "0.00000015"),
])
def test_decimals_are_written_plain(value, written):
    [_, row] = list(csv.reader(io.StringIO(csv_text(["x"], [(value,)]), newline="")))
    assert row == [written]
