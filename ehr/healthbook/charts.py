"""Line charts of the health book as accessible SVG, drawn on the server (no script, no library).

Pure: a `Series` (ehr.fhir.healthbook) and the page's words in, SVG markup out. The chart is a
group named by its `<title>` and described by its `<desc>`; each measurement is a focusable
element whose accessible name is its date and value, so a keyboard or a tap reaches every point
and the page's stylesheet shows the value beside it (`.pt:focus .tip`). The normal range is a
shaded band. The page also prints the same values as a table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from html import escape
from typing import Callable

from ehr.fhir.healthbook import Series

# A small canvas: on a phone the SVG is drawn near 1:1, so its 14px text stays readable.
WIDTH, HEIGHT = 420, 250
LEFT, RIGHT, TOP, BOTTOM = 46, 14, 26, 34
MARKERS = ("circle", "square")


@dataclass(frozen=True)
class Words:
    """What the chart says, in the page's language."""

    title: str
    desc: str
    line_names: tuple[str, ...]  # one per line of the series
    point_label: Callable[[datetime, str, str], str]  # (when, line name, value text) -> accessible name
    day: Callable[[datetime], str]  # dd/mm/yyyy
    number: Callable[[Decimal], str]  # a value in the page's number format
    unit: str
    value: Callable[[str], str] = str  # a point's value as recorded -> as shown beside it


def _nice_step(span: float) -> float:
    """A round step (1, 2, 2.5 or 5 times a power of ten) giving about four grid lines."""
    raw = span / 4 if span > 0 else 1.0
    magnitude = 10 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)


def _bounds(series: Series) -> tuple[float, float, float]:
    values = [float(p.value) for line in series.lines for p in line.points]
    values += [float(v) for r in series.ranges for v in r]
    low, high = min(values), max(values)
    pad = (high - low) * 0.1 or max(abs(high) * 0.1, 1)
    low, high = low - pad, high + pad
    if min(float(p.value) for line in series.lines for p in line.points) >= 0:
        low = max(low, 0)
    step = _nice_step(high - low)
    low = step * math.floor(low / step)
    high = step * math.ceil(high / step)
    return low, high, step


def _tick(value: float) -> Decimal:
    """A grid value as a short decimal: 10 not 1E+1, 2.5 not 2.500000."""
    d = Decimal(f"{value:.6f}").normalize()
    return d.quantize(Decimal(1)) if d == d.to_integral_value() else d


def _marker(kind: str, x: float, y: float, size: float, cls: str) -> str:
    if kind == "square":
        return f'<rect class="{cls}" x="{x - size:.1f}" y="{y - size:.1f}" width="{2 * size:.1f}" height="{2 * size:.1f}"/>'
    return f'<circle class="{cls}" cx="{x:.1f}" cy="{y:.1f}" r="{size:.1f}"/>'


def svg(series: Series, words: Words, ident: str) -> str:
    """The chart of `series` as an SVG element (a string of markup, escaped)."""
    points = [p for line in series.lines for p in line.points]
    first, last = min(p.when for p in points), max(p.when for p in points)
    if first == last:
        first, last = first - timedelta(days=1), last + timedelta(days=1)
    span = (last - first).total_seconds()
    low, high, step = _bounds(series)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(when: datetime) -> float:
        return LEFT + plot_w * (when - first).total_seconds() / span

    def y(value: float) -> float:
        return TOP + plot_h * (1 - (value - low) / (high - low))

    out = [
        f'<svg class="chart" id="{ident}" viewBox="0 0 {WIDTH} {HEIGHT}" role="group" aria-labelledby="{ident}-title {ident}-desc"'
        f' xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{ident}-title">{escape(words.title)}</title>',
        f'<desc id="{ident}-desc">{escape(words.desc)}</desc>',
    ]
    for i, (band_low, band_high) in enumerate(series.ranges):
        top, bottom = y(min(float(band_high), high)), y(max(float(band_low), low))
        out.append(f'<rect class="band band-{i}" x="{LEFT}" y="{top:.1f}" width="{plot_w}" height="{max(bottom - top, 0):.1f}"/>')
    tick = low
    while tick <= high + step / 1000:
        ty = y(tick)
        out.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{ty:.1f}" y2="{ty:.1f}"/>')
        out.append(f'<text class="axis" x="{LEFT - 6}" y="{ty + 4:.1f}" text-anchor="end" aria-hidden="true">'
                   f'{escape(words.number(_tick(tick)))}</text>')
        tick += step
    out.append(f'<text class="axis unit" x="{LEFT}" y="{TOP - 10}" aria-hidden="true">{escape(words.unit)}</text>')
    dates = sorted({p.when for p in points})
    shown = [dates[0], dates[-1]] if len(dates) > 1 else dates
    for when, anchor in zip(shown, ("start", "end"), strict=False):
        out.append(f'<text class="axis" x="{x(when):.1f}" y="{HEIGHT - BOTTOM + 20}" text-anchor="{anchor}" aria-hidden="true">'
                   f"{escape(words.day(when))}</text>")
    for i, line in enumerate(series.lines):
        path = " ".join(f"{x(p.when):.1f},{y(float(p.value)):.1f}" for p in line.points)
        out.append(f'<polyline class="line line-{i}" points="{path}"/>')
    for i, line in enumerate(series.lines):
        name = words.line_names[i] if i < len(words.line_names) else line.name
        for p in line.points:
            px, py = x(p.when), y(float(p.value))
            label = words.point_label(p.when, name, p.text)
            tip_y = py - 14 if py - 14 > TOP else py + 26
            tip_x = min(max(px, LEFT + 30), WIDTH - RIGHT - 30)
            out.append(
                f'<g class="pt pt-{i}" tabindex="0" role="img" aria-label="{escape(label)}">'
                f"<title>{escape(label)}</title>"
                f'<circle class="hit" cx="{px:.1f}" cy="{py:.1f}" r="14"/>'
                f'{_marker(MARKERS[i % len(MARKERS)], px, py, 5, "dot")}'
                f'<text class="tip" x="{tip_x:.1f}" y="{tip_y:.1f}" text-anchor="middle" aria-hidden="true">{escape(words.value(p.text))}</text>'
                "</g>"
            )
    out.append("</svg>")
    return "".join(out)
