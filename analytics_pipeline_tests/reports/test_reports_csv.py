"""The reports' CSV attachments: a text cell cannot become a spreadsheet formula, numbers and days
stay as they were."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest

from analytics_pipeline.reports.render import csv_text


@pytest.mark.parametrize("prefix", ["=", "+", "-", "@", "\t", "\r"])
def test_a_text_cell_cannot_become_a_formula(prefix):
    text = f"{prefix}cmd|' /C calc'!A0"
    written = csv_text(["period_start", "most_popular_format", "revenue"],
                       [(dt.date(2025, 4, 1), text, Decimal("-12.50"))])
    [header, row] = list(csv.reader(io.StringIO(written, newline="")))
    assert header == ["period_start", "most_popular_format", "revenue"]
    assert row == ["2025-04-01", "'" + text, "-12.50"]
