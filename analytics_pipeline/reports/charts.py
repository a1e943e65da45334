"""Charts as PNG images for the email body (inline, so they show without loading remote content).

matplotlib's object API with the Agg canvas: no pyplot global state, safe in a run worker with
no display. Sized for a 600 px mail column.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from decimal import Decimal

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
    title: str, labels: Sequence[str], values: Sequence[Decimal | float | int | None], horizontal: bool = False,
    highlight: Sequence[bool] | None = None,
) -> bytes:
    """Bars in the accent colour; with `highlight`, only the bars it marks, the others muted."""
    figure = _figure(2.4 if not horizontal else max(1.4, 0.35 * len(labels) + 0.6))
    axes = figure.add_subplot()
    numbers = [float(v or 0) for v in values]
    colours = [ACCENT if marked else MUTED for marked in highlight] if highlight is not None else ACCENT
    if horizontal:
        axes.barh(list(labels)[::-1], numbers[::-1], color=colours[::-1] if highlight is not None else colours)
    else:
        axes.bar(range(len(labels)), numbers, color=colours)
        step = max(1, len(labels) // 8)
        axes.set_xticks(range(0, len(labels), step), [labels[i] for i in range(0, len(labels), step)])
    _style(axes)
    axes.set_title(title, fontsize=10, loc="left")
    return _png(figure)
