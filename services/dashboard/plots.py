"""Line charts as inline SVG, rendered on the server so a page needs no plotting script.

Every chart has labelled axes, a legend and the value printed beside each point, so it reads
without hovering. ``line_chart`` returns markup that templates insert with ``|safe``; every text
in it is escaped here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

WIDTH = 600
HEIGHT = 360
MARGIN_LEFT = 76
MARGIN_RIGHT = 28
MARGIN_TOP = 60
MARGIN_BOTTOM = 56
# Colour-blind-safe palette (the Okabe-Ito colours).
COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
# With more points than this, only every n-th value and the last one get a label, so labels do not overlap.
MAX_LABELLED_POINTS = 12


@dataclass(frozen=True)
class Series:
    """One line of a chart: ``(x, y)`` points in x order and the legend name."""

    name: str
    points: Sequence[tuple[float, float]]


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Return about ``count`` round tick values (steps of 1, 2 or 5 times a power of ten) covering [low, high]."""
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw_step = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw_step))
    step = next(factor * magnitude for factor in (1, 2, 5, 10) if factor * magnitude >= raw_step)
    first = math.floor(low / step) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    if ticks[-1] < high:
        ticks.append(round(value, 12))
    return ticks


def format_number(value: float) -> str:
    """Format a value with about three significant digits (12.3, 0.615, 1.2e+04)."""
    if value == 0:
        return "0"
    if abs(value) >= 1e5 or abs(value) < 1e-3:
        return f"{value:.2g}"
    return f"{value:.3g}"


def line_chart(
    title: str,
    x_label: str,
    y_label: str,
    series: Sequence[Series],
    format_x: Callable[[float], str] = format_number,
    format_y: Callable[[float], str] = format_number,
    y_from_zero: bool = False,
) -> str:
    """Render ``series`` as an SVG line chart; a chart without points shows "no data yet"."""
    drawn = [line for line in series if line.points]
    parts = [_open_svg(title), _text(WIDTH / 2, 22, title, "chart-title", anchor="middle")]
    if not drawn:
        parts.append(_text(WIDTH / 2, HEIGHT / 2, "no data yet", "chart-empty", anchor="middle"))
        parts.append("</svg>")
        return "".join(parts)

    xs = [x for line in drawn for x, _ in line.points]
    ys = [y for line in drawn for _, y in line.points]
    x_ticks = nice_ticks(min(xs), max(xs))
    y_ticks = nice_ticks(0.0 if y_from_zero else min(ys), max(ys))
    scale = _Scale(x_ticks[0], x_ticks[-1], y_ticks[0], y_ticks[-1])

    parts.append(_axes(scale, x_ticks, y_ticks, x_label, y_label, format_x, format_y))
    for index, line in enumerate(drawn):
        color = COLORS[index % len(COLORS)]
        parts.append(_polyline(scale, line, color, format_y))
        if len(drawn) > 1:
            parts.append(_legend_entry(index, line.name, color))
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True)
class _Scale:
    x_low: float
    x_high: float
    y_low: float
    y_high: float

    def x(self, value: float) -> float:
        span = (self.x_high - self.x_low) or 1.0
        return MARGIN_LEFT + (value - self.x_low) / span * (WIDTH - MARGIN_LEFT - MARGIN_RIGHT)

    def y(self, value: float) -> float:
        span = (self.y_high - self.y_low) or 1.0
        return HEIGHT - MARGIN_BOTTOM - (value - self.y_low) / span * (HEIGHT - MARGIN_TOP - MARGIN_BOTTOM)


def _open_svg(title: str) -> str:
    label = escape(title, quote=True)
    return (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{label}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
    )


def _text(x: float, y: float, content: str, css_class: str, anchor: str = "start", rotate: bool = False) -> str:
    transform = f' transform="rotate(-90 {x:.1f} {y:.1f})"' if rotate else ""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" class="{css_class}" text-anchor="{anchor}"{transform}>'
        f"{escape(content)}</text>"
    )


def _axes(scale: _Scale, x_ticks, y_ticks, x_label, y_label, format_x, format_y) -> str:
    bottom = HEIGHT - MARGIN_BOTTOM
    parts = [
        f'<line x1="{MARGIN_LEFT}" y1="{bottom}" x2="{WIDTH - MARGIN_RIGHT}" y2="{bottom}" class="chart-axis"/>',
        f'<line x1="{MARGIN_LEFT}" y1="{MARGIN_TOP}" x2="{MARGIN_LEFT}" y2="{bottom}" class="chart-axis"/>',
    ]
    for tick in x_ticks:
        x = scale.x(tick)
        parts.append(f'<line x1="{x:.1f}" y1="{bottom}" x2="{x:.1f}" y2="{bottom + 5}" class="chart-axis"/>')
        parts.append(_text(x, bottom + 20, format_x(tick), "chart-tick", anchor="middle"))
    for tick in y_ticks:
        y = scale.y(tick)
        parts.append(f'<line x1="{MARGIN_LEFT}" y1="{y:.1f}" x2="{WIDTH - MARGIN_RIGHT}" y2="{y:.1f}" class="chart-grid"/>')
        parts.append(_text(MARGIN_LEFT - 8, y + 4, format_y(tick), "chart-tick", anchor="end"))
    parts.append(_text((MARGIN_LEFT + WIDTH - MARGIN_RIGHT) / 2, HEIGHT - 10, x_label, "chart-label", anchor="middle"))
    parts.append(_text(18, (MARGIN_TOP + bottom) / 2, y_label, "chart-label", anchor="middle", rotate=True))
    return "".join(parts)


def _polyline(scale: _Scale, line: Series, color: str, format_y: Callable[[float], str]) -> str:
    coordinates = " ".join(f"{scale.x(x):.1f},{scale.y(y):.1f}" for x, y in line.points)
    parts = [f'<g class="chart-series" data-series="{escape(line.name, quote=True)}">',
             f'<polyline points="{coordinates}" fill="none" stroke="{color}" stroke-width="2"/>']
    every = max(1, math.ceil(len(line.points) / MAX_LABELLED_POINTS))
    for index, (x, y) in enumerate(line.points):
        parts.append(f'<circle cx="{scale.x(x):.1f}" cy="{scale.y(y):.1f}" r="3.5" fill="{color}"/>')
        if index % every == 0 or index == len(line.points) - 1:
            parts.append(_text(scale.x(x), scale.y(y) - 9, format_y(y), "chart-value", anchor="middle"))
    parts.append("</g>")
    return "".join(parts)


def _legend_entry(index: int, name: str, color: str) -> str:
    x = MARGIN_LEFT + 8 + index * 120
    y = 44
    return (
        f'<rect x="{x}" y="{y - 9}" width="12" height="12" fill="{color}"/>'
        + _text(x + 17, y + 2, name, "chart-legend")
    )


SPARKLINE_WIDTH = 150
SPARKLINE_HEIGHT = 34
SPARKLINE_PLOT_WIDTH = 100


def sparkline(values: Sequence[float], description: str) -> str:
    """Render a small trend line of ``values`` (oldest first) with the latest value written beside it."""
    if not values:
        return ""
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = SPARKLINE_PLOT_WIDTH / max(1, len(values) - 1)
    coordinates = " ".join(
        f"{index * step:.1f},{SPARKLINE_HEIGHT - 4 - (value - low) / span * (SPARKLINE_HEIGHT - 8):.1f}"
        for index, value in enumerate(values)
    )
    label = f"{description}: latest {format_number(values[-1])}, range {format_number(low)} to {format_number(high)}"
    return (
        f'<svg class="sparkline" viewBox="0 0 {SPARKLINE_WIDTH} {SPARKLINE_HEIGHT}" width="{SPARKLINE_WIDTH}" '
        f'height="{SPARKLINE_HEIGHT}" role="img" aria-label="{escape(label, quote=True)}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(label)}</title>'
        f'<polyline points="{coordinates}" fill="none" stroke="{COLORS[0]}" stroke-width="1.5"/>'
        + _text(SPARKLINE_PLOT_WIDTH + 6, SPARKLINE_HEIGHT / 2 + 5, format_number(values[-1]), "chart-value")
        + "</svg>"
    )
