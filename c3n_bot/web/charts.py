"""Server-rendered SVG line charts: shaded bands, a median line, flagged points."""

from __future__ import annotations

import functools
import hashlib
import itertools
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 48, 16, 16, 44
PLOT_WIDTH, PLOT_HEIGHT = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
MAX_X_LABELS = 10
TONES = {
    "ok": "#2e7d32",
    "mild": "#f9a825",
    "moderate": "#ef6c00",
    "severe": "#c62828",
    "neutral": "#757575",
}


@dataclass(frozen=True)
class Band:
    """A shaded horizontal band from `low` to `high` on the y scale, e.g. a severity range.

    `tone` is one of TONES (ok, mild, moderate, severe, neutral); others render neutral."""

    low: float
    high: float
    label: str
    tone: str


@dataclass(frozen=True)
class _Frame:
    """Maps point indexes and values to SVG coordinates."""

    count: int
    y_min: float
    y_max: float

    def x(self, index: int) -> float:
        if self.count <= 1:
            return LEFT + PLOT_WIDTH / 2
        return LEFT + PLOT_WIDTH * index / (self.count - 1)

    def y(self, value: float) -> float:
        y_max = self.y_max
        clamped = min(max(value, self.y_min), y_max)
        return TOP + PLOT_HEIGHT * (y_max - clamped) / ((y_max - self.y_min) or 1.0)


def line_chart(
    points: Sequence[tuple[str, float | None]],
    *,
    y_min: float,
    y_max: float,
    bands: Sequence[Band] = (),
    median: float | None = None,
    flagged: Collection[int] = (),
    title: str,
    y_label: str,
    median_label: str = "median",
) -> Markup:
    """An accessible SVG line chart of labelled points; a None value leaves a gap.

    `flagged` holds indexes of points to emphasise (e.g. a run-chart shift); every text
    argument is shown as given, so callers pass already translated strings."""
    frame = _Frame(len(points), y_min, y_max)
    # Each label and coordinate shows more than once (axis, line, point): made once.
    labels = [escape(label) for label, _ in points]
    xs = [f"{frame.x(i):.1f}" for i in range(len(points))]
    ys = [None if value is None else f"{frame.y(value):.1f}" for _, value in points]
    parts = [
        _open(title, _describe(points, y_label)),
        *(_band(y_min, y_max, band) for band in bands),
        _y_axis(y_min, y_max, y_label),
        _x_labels(xs, labels),
        _lines(xs, ys),
        _median(frame, median, median_label) if median is not None else "",
        *(
            _point(xs[i], y, labels[i], value, i in flagged)
            for i, ((_, value), y) in enumerate(zip(points, ys, strict=True))
            if value is not None and y is not None
        ),
        "</svg>",
    ]
    return Markup("".join(parts))


def data_table(
    points: Sequence[tuple[str, float | None]], *, caption: str, x_label: str, y_label: str
) -> Markup:
    """The chart's points as a plain table: the fallback for screen readers and print."""
    rows = "".join(
        f'<tr><th scope="row">{escape(label)}</th>'
        f"<td>{'–' if value is None else format_value(value)}</td></tr>"
        for label, value in points
    )
    return Markup(
        f'<table class="chart-data"><caption>{escape(caption)}</caption><thead><tr>'
        f'<th scope="col">{escape(x_label)}</th><th scope="col">{escape(y_label)}</th>'
        f"</tr></thead><tbody>{rows}</tbody></table>"
    )


def format_value(value: float) -> str:
    """A value as a chart shows it: no trailing zeros, at most one decimal."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _describe(points: Sequence[tuple[str, float | None]], y_label: str) -> str:
    values = [v for _, v in points if v is not None]
    if not points or not values:
        return y_label
    span = f"{points[0][0]} – {points[-1][0]}"
    return f"{y_label}, {span}: {format_value(min(values))} – {format_value(max(values))}"


def _open(title: str, desc: str) -> str:
    # Ids derived from the text keep several charts on one page apart, and output stable.
    key = hashlib.blake2s(f"{title}\0{desc}".encode(), digest_size=4).hexdigest()
    return (
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-labelledby="chart-{key}-t chart-{key}-d" font-size="11">'
        f'<title id="chart-{key}-t">{escape(title)}</title>'
        f'<desc id="chart-{key}-d">{escape(desc)}</desc>'
    )


# The bands and the axis of a scale are the same on every chart of it (an instrument's trend
# on each patient's page): made once. They hold the scale's labels, no point of anyone's data.
@functools.lru_cache(maxsize=512)
def _band(y_min: float, y_max: float, band: Band) -> str:
    frame = _Frame(0, y_min, y_max)
    top, bottom = frame.y(band.high), frame.y(band.low)
    colour = TONES.get(band.tone, TONES["neutral"])
    label = escape(band.label)
    return (
        f'<g class="band band-{escape(band.tone)}"><title>{label}</title>'
        f'<rect x="{LEFT}" y="{top:.1f}" width="{PLOT_WIDTH}" '
        f'height="{max(bottom - top, 0.0):.1f}" fill="{colour}" fill-opacity="0.12"/>'
        f'<text x="{WIDTH - RIGHT - 4}" y="{top + 12:.1f}" text-anchor="end" fill="{colour}">'
        f"{label}</text></g>"
    )


def ticks(low: float, high: float, most: int = 6) -> list[float]:
    """Round tick values from low to high: steps of 1, 2, 2.5 or 5 times a power of ten."""
    span = high - low
    if span <= 0:
        return [low]
    magnitude = 10 ** math.floor(math.log10(span / most))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if span / (m * magnitude) <= most)
    first = math.ceil(low / step) * step
    return [round(first + n * step, 9) for n in range(int((high - first) / step + 1e-9) + 1)]


@functools.lru_cache(maxsize=256)
def _y_axis(y_min: float, y_max: float, y_label: str) -> str:
    frame = _Frame(0, y_min, y_max)
    lines = "".join(
        f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
        f'stroke="#ddd"/><text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
        f"{format_value(t)}</text>"
        for t, y in ((t, frame.y(t)) for t in ticks(frame.y_min, frame.y_max))
    )
    middle = TOP + PLOT_HEIGHT / 2
    label = (
        f'<text x="12" y="{middle:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 12 {middle:.1f})">{escape(y_label)}</text>'
    )
    return f'<g class="axis" fill="#444">{lines}{label}</g>'


def _x_labels(xs: Sequence[str], labels: Sequence[str]) -> str:
    step = max(1, -(-len(labels) // MAX_X_LABELS))
    baseline = HEIGHT - BOTTOM + 16
    return (
        '<g class="axis" fill="#444">'
        + "".join(
            f'<text x="{xs[i]}" y="{baseline}" text-anchor="middle">{labels[i]}</text>'
            for i in range(0, len(labels), step)
        )
        + "</g>"
    )


def _lines(xs: Sequence[str], ys: Sequence[str | None]) -> str:
    """One polyline per run of consecutive known values, so missing weeks show as gaps."""
    runs = (
        list(group)
        for known, group in itertools.groupby(
            zip(xs, ys, strict=True), key=lambda xy: xy[1] is not None
        )
        if known
    )
    return "".join(
        '<polyline fill="none" stroke="#1565c0" stroke-width="2" points="'
        + " ".join(f"{x},{y}" for x, y in run)
        + '"/>'
        for run in runs
        if len(run) > 1
    )


def _median(frame: _Frame, median: float, label: str) -> str:
    y = frame.y(median)
    text = f"{label} {format_value(median)}"
    return (
        f'<g class="median"><line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
        f'stroke="#6a1b9a" stroke-width="1.5" stroke-dasharray="6 4"/>'
        f'<text x="{LEFT + 4}" y="{y - 4:.1f}" fill="#6a1b9a">{escape(text)}</text></g>'
    )


def _point(x: str, y: str, label: str, value: float, flagged: bool) -> str:
    """A point at formatted coordinates; `label` comes escaped."""
    colour, radius = ("#c62828", 5) if flagged else ("#1565c0", 3.5)
    css = "point flagged" if flagged else "point"
    return (
        f'<circle class="{css}" cx="{x}" cy="{y}" '
        f'r="{radius}" fill="{colour}"><title>{label}: {format_value(value)}</title>'
        "</circle>"
    )
