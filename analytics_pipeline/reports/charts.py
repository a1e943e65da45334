"""Charts as PNG images for the email body (inline, so they show without loading remote content).

matplotlib's object API with the Agg canvas: no pyplot global state, safe in a run worker with
no display. Sized for a 600 px mail column.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from decimal import Decimal

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

WIDTH_INCHES, DPI = 6.0, 100
ACCENT = "#2563eb"
MUTED = "#94a3b8"


def _figure(height: float) -> Figure:
    figure = Figure(figsize=(WIDTH_INCHES, height), dpi=DPI, layout="tight")
    FigureCanvasAgg(figure)
    return figure


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _style(axes) -> None:
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    axes.tick_params(labelsize=8)
    axes.grid(axis="y", color="#e2e8f0", linewidth=0.6)
    axes.set_axisbelow(True)


def line_chart(title: str, labels: Sequence[str], values: Sequence[Decimal | float | None]) -> bytes:
    figure = _figure(2.4)
    axes = figure.add_subplot()
    points = [(label, float(v)) for label, v in zip(labels, values) if v is not None]
    if points:
        xs, ys = zip(*points)
        axes.plot(range(len(xs)), ys, color=ACCENT, linewidth=1.8, marker="o" if len(xs) < 15 else None)
        step = max(1, len(xs) // 6)
        axes.set_xticks(range(0, len(xs), step), [xs[i] for i in range(0, len(xs), step)])
    _style(axes)
    axes.set_title(title, fontsize=10, loc="left")
    return _png(figure)


def bar_chart(
    title: str, labels: Sequence[str], values: Sequence[Decimal | float | int | None], horizontal: bool = False
) -> bytes:
    figure = _figure(2.4 if not horizontal else max(1.4, 0.35 * len(labels) + 0.6))
    axes = figure.add_subplot()
    numbers = [float(v or 0) for v in values]
    if horizontal:
        axes.barh(list(labels)[::-1], numbers[::-1], color=ACCENT)
    else:
        axes.bar(range(len(labels)), numbers, color=ACCENT)
        step = max(1, len(labels) // 8)
        axes.set_xticks(range(0, len(labels), step), [labels[i] for i in range(0, len(labels), step)])
    _style(axes)
    axes.set_title(title, fontsize=10, loc="left")
    return _png(figure)


def heat_table(title: str, cohorts: Sequence[str], months: int, rates: dict[tuple[str, int], Decimal]) -> bytes:
    """Retention heat table: one row per cohort, one column per month since signup."""
    figure = _figure(max(1.6, 0.32 * len(cohorts) + 0.9))
    axes = figure.add_subplot()
    grid = [[float(rates[(c, m)]) if (c, m) in rates else float("nan") for m in range(months)] for c in cohorts]
    cmap = matplotlib.colormaps["Blues"].with_extremes(bad="#ffffff")
    axes.imshow(grid, cmap=cmap, vmin=0, vmax=100, aspect="auto")
    for i, row in enumerate(grid):
        for j, value in enumerate(row):
            if value == value:  # not NaN
                axes.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=7,
                          color="white" if value > 60 else "#0f172a")
    axes.set_xticks(range(months), [str(m) for m in range(months)])
    axes.set_yticks(range(len(cohorts)), list(cohorts))
    axes.tick_params(labelsize=8, length=0)
    axes.set_xlabel("months since signup", fontsize=8)
    for spine in axes.spines.values():
        spine.set_visible(False)
    axes.set_title(title, fontsize=10, loc="left")
    return _png(figure)
