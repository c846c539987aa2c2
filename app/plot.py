"""Line charts as SVG text: a pure function from numbers to a picture, no plotting library.

A loss curve needs a handful of elements: a frame, ticks on both axes with their labels, one
polyline per series and a legend. Writing them directly keeps the service free of a plotting
dependency (matplotlib alone is ~40 MB) and makes the output easy to test: it is XML.

Non-finite values (a loss may be infinite or NaN at some predictions) leave a gap: a series is
drawn as one polyline per run of finite points, so a finite series is exactly one polyline.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

#: Okabe-Ito colours: distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
WIDTH, HEIGHT = 640, 420
#: Plot area margins: room for the title and subtitle, the tick labels and the axis labels.
LEFT, RIGHT, TOP, BOTTOM = 72, 24, 64, 56
#: Roughly how many ticks an axis gets (a "nice" step of 1, 2 or 5 times a power of ten).
TICKS = 6


@dataclass(frozen=True)
class Series:
    """One line: its legend label and one y value per x of the chart."""

    label: str
    ys: Sequence[float]


@dataclass(frozen=True)
class Chart:
    """What to draw: the x values shared by every series, the series, and the words."""

    title: str
    subtitle: str
    x_label: str
    y_label: str
    xs: Sequence[float]
    series: Sequence[Series]


@dataclass(frozen=True)
class Scale:
    """A linear map from data values in ``[low, high]`` to pixels in ``[start, end]``
    (``end < start`` for the y axis, whose pixels grow downwards)."""

    low: float
    high: float
    start: float
    end: float

    def __call__(self, value: float) -> float:
        """The pixel of ``value``."""
        return self.start + (value - self.low) / (self.high - self.low) * (self.end - self.start)


def nice_step(span: float, ticks: int = TICKS) -> float:
    """The tick step for ``span``: 1, 2 or 5 times a power of ten, giving about ``ticks``.

    >>> nice_step(6.0), nice_step(0.98), nice_step(700.0)
    (1.0, 0.2, 200.0)
    """
    raw = span / max(ticks, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    for factor in (1.0, 2.0, 5.0, 10.0):
        if raw <= factor * power * 1.0000001:
            return factor * power
    return 10.0 * power  # pragma: no cover (the loop always returns)


def tick_values(low: float, high: float, ticks: int = TICKS) -> list[float]:
    """Round values in ``[low, high]`` (both ends within a rounding error) a tick step apart.

    >>> tick_values(-3.0, 3.0)
    [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0]
    """
    step = nice_step(high - low, ticks)
    first = math.ceil(low / step - 1e-9)
    last = math.floor(high / step + 1e-9)
    return [_tidy(i * step) for i in range(first, last + 1)]


def y_range(values: Sequence[float]) -> tuple[float, float]:
    """The y axis's range: the finite values' extent widened to round ticks, never empty.

    >>> y_range([0.0, 0.5, 9.0])
    (0.0, 10.0)
    >>> y_range([2.0, 2.0])
    (1.5, 2.5)
    """
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return 0.0, 1.0
    low, high = min(finite), max(finite)
    if high - low <= 1e-12 * max(abs(low), abs(high), 1.0):
        pad = max(abs(low) * 0.25, 0.5)
        return low - pad, high + pad
    step = nice_step(high - low)
    return _tidy(math.floor(low / step) * step), _tidy(math.ceil(high / step) * step)


def number(value: float) -> str:
    """A tick label: short, no float noise (``0.30000000000000004`` is ``0.3``).

    >>> number(0.30000000000000004), number(-2.0), number(1e-07), number(25000.0)
    ('0.3', '-2', '1e-07', '25000')
    """
    return f"{value + 0.0:.6g}"  # + 0.0: -0.0 prints as 0


def render_svg(chart: Chart, width: int = WIDTH, height: int = HEIGHT) -> str:
    """``chart`` as a standalone SVG document (UTF-8 text). Every text is XML-escaped."""
    if not chart.xs or any(len(s.ys) != len(chart.xs) for s in chart.series):
        raise ValueError("every series needs one y value per x value, and xs must not be empty")
    x_low, x_high = min(chart.xs), max(chart.xs)
    if x_high <= x_low:
        x_high = x_low + 1.0
    y_low, y_high = y_range([y for s in chart.series for y in s.ys])
    sx = Scale(x_low, x_high, LEFT, width - RIGHT)
    sy = Scale(y_low, y_high, height - BOTTOM, TOP)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12" '
        'role="img" aria-labelledby="title">',
        f'<title id="title">{_text(chart.title)}: {_text(chart.subtitle)}</title>',
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text class="title" x="{LEFT}" y="22" font-size="16" font-weight="bold">'
        f"{_text(chart.title)}</text>",
        f'<text class="subtitle" x="{LEFT}" y="42" fill="#444444">{_text(chart.subtitle)}</text>',
        *_axes(sx, sy, width, height),
        f'<text class="x-label" x="{(sx.start + sx.end) / 2:.1f}" y="{height - 14}" '
        f'text-anchor="middle">{_text(chart.x_label)}</text>',
        f'<text class="y-label" transform="translate(18 {(sy.start + sy.end) / 2:.1f}) '
        f'rotate(-90)" text-anchor="middle">{_text(chart.y_label)}</text>',
    ]
    for i, series in enumerate(chart.series):
        parts.append(_curve(chart.xs, series, sx, sy, PALETTE[i % len(PALETTE)]))
    parts.extend(_legend(chart.series, width))
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _axes(sx: Scale, sy: Scale, width: int, height: int) -> list[str]:
    """The frame, grid lines and tick labels of both axes."""
    left, right, top, bottom = sx.start, sx.end, sy.end, sy.start
    out = ['<g class="axes" stroke="#999999" stroke-width="1">']
    for value in tick_values(sx.low, sx.high):
        x = sx(value)
        out.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}" stroke="#eeeeee"/>')
        out.append(
            f'<text class="x-tick" x="{x:.1f}" y="{bottom + 16}" text-anchor="middle" '
            f'stroke="none" fill="#333333">{_text(number(value))}</text>'
        )
    for value in tick_values(sy.low, sy.high):
        y = sy(value)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="#eeeeee"/>')
        out.append(
            f'<text class="y-tick" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" '
            f'stroke="none" fill="#333333">{_text(number(value))}</text>'
        )
    out.append(
        f'<rect x="{left}" y="{top}" width="{right - left}" height="{bottom - top}" fill="none"/>'
    )
    out.append("</g>")
    return out


def _curve(xs: Sequence[float], series: Series, sx: Scale, sy: Scale, colour: str) -> str:
    """One series: a polyline per run of finite points (a gap where the value is not finite)."""
    runs: list[list[str]] = [[]]
    for x, y in zip(xs, series.ys, strict=True):
        if math.isfinite(y) and math.isfinite(x):
            runs[-1].append(f"{sx(x):.2f},{sy(y):.2f}")
        elif runs[-1]:
            runs.append([])
    lines = [
        f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(run)}"/>'
        for run in runs
        if run
    ]
    return f'<g class="curve" data-label="{_text(series.label)}">{"".join(lines)}</g>'


def _legend(series: Sequence[Series], width: int) -> list[str]:
    """One entry per series, top right inside the plot area, on a white box."""
    if not series:
        return []
    longest = max(len(s.label) for s in series)
    box_width = 34 + 7 * longest
    x = width - RIGHT - box_width - 8
    y = TOP + 8
    out = [
        '<g class="legend">',
        f'<rect x="{x}" y="{y}" width="{box_width}" height="{8 + 18 * len(series)}" '
        'fill="#ffffff" fill-opacity="0.85" stroke="#cccccc"/>',
    ]
    for i, s in enumerate(series):
        row = y + 16 + 18 * i
        colour = PALETTE[i % len(PALETTE)]
        out.append(
            f'<line x1="{x + 6}" y1="{row - 4}" x2="{x + 26}" y2="{row - 4}" stroke="{colour}" '
            'stroke-width="2"/>'
        )
        out.append(f'<text class="legend-entry" x="{x + 30}" y="{row}">{_text(s.label)}</text>')
    out.append("</g>")
    return out


def _tidy(value: float) -> float:
    """``value`` without float noise from multiplying a step (``3 * 0.1``); ``-0.0`` is 0."""
    return float(f"{value:.12g}") + 0.0


def _text(value: str) -> str:
    return escape(value, quote=True)
