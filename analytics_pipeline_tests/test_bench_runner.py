"""`make bench`'s verdicts: a target it can read is judged against the figure (or the ratio to
the baseline), in compatible units; one it cannot read is left to the benchmark."""

import pytest

from bench.run_all import ratio, verdict


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"figure": 0.98, "unit": "ms", "target": "< 100 ms"}, "met"),
        ({"figure": 2.5, "unit": "s", "target": "< 2 s"}, "**not met**"),
        ({"figure": 1500, "unit": "ms", "target": "< 2 s"}, "met"),
        ({"figure": 90.0, "unit": "s", "baseline": 30.0, "target": "<= 3x the GROUP BY scan"}, "met"),
        ({"figure": 100.0, "unit": "s", "baseline": 30.0, "target": "<= 3x the GROUP BY scan"}, "**not met**"),
        ({"figure": 100.0, "unit": "s", "baseline": "a text", "ratio": 2.5, "target": "<= 3x scan"}, "met"),
        ({"figure": 78, "unit": "MB", "target": "flat in the number of events"}, ""),
        ({"figure": 78, "unit": "MB", "target": "flat in the number of events", "met": False}, "**not met**"),
        ({"figure": 5, "unit": "MB", "target": "< 2 s"}, ""),
    ],
)
def test_verdict(row, expected):
    assert verdict(row) == expected


def test_ratio_is_figure_over_a_numeric_baseline_unless_given():
    assert ratio({"figure": 45.0, "baseline": 30.0}) == 1.5
    assert ratio({"figure": 45.0, "baseline": "30 s"}) is None
    assert ratio({"figure": 45.0, "baseline": 30.0, "ratio": 1.4}) == 1.4
