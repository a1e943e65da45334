"""CSV cells that a spreadsheet reads as data, never as a formula (CSV injection, OWASP).

A text cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading `'`,
as OWASP's CSV injection guidance recommends: a spreadsheet then shows the text as it was written
and runs nothing. Tenant users write such text (a tournament's format, a report's name). Numbers
stay numbers: a value of a numeric type, or a text that is a plain decimal number (`-12.50`,
`+3`, `1e-5`), is written as it is, so a negative amount still sums in the spreadsheet. Every CSV
the Dashboard API and the reports write goes through `safe_cell`.
"""

from __future__ import annotations

import re

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def safe_cell(value: object) -> object:
    """`value` as a CSV cell: text that a spreadsheet would take for a formula is neutralised."""
    if not isinstance(value, str):  # numbers, days, None: as they are
        return value
    if value.startswith(FORMULA_PREFIXES) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value
