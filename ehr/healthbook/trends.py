"""Series drawn for a page: the accessible SVG chart (charts.svg) with the page's words, the same
values as table rows, and the normal range as text. Used by the health book's charts page and by
the clinic's patient chart (its vitals trend), so both read the same way."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from flask_babel import gettext as _
from markupsafe import Markup

from ehr.fhir import healthbook as hb
from ehr.healthbook import charts
from ehr.healthbook.common import Fmt


def drawn(series: list[hb.Series], prefix: str = "chart") -> list[dict[str, Any]]:
    """What a template needs per series: the series, its SVG, its table rows, its range text, and
    its title, unit and line names in the page's language."""
    return [{"series": s, "svg": draw(s, i, prefix), "rows": table_rows(s), "range": range_text(s), "title": Fmt.series(s),
             "unit": Fmt.unit(s.unit) if s.unit else "", "lines": [Fmt.line(line.code, line.name) for line in s.lines]}
            for i, s in enumerate(series)]


def draw(series: hb.Series, index: int, prefix: str = "chart") -> Markup:
    names = tuple(Fmt.line(line.code, line.name) for line in series.lines)
    unit = Fmt.unit(series.unit)
    title = Fmt.series(series)
    first, last = series.lines[0].points[0].when, series.lines[0].points[-1].when
    words = charts.Words(
        title=title,
        desc=(_("%(count)s lần đo từ %(first)s đến %(last)s, đơn vị %(unit)s. Vùng tô màu là khoảng bình thường.",
                count=series.count, first=hb.day(first), last=hb.day(last), unit=unit) if series.ranges else
              _("%(count)s lần đo từ %(first)s đến %(last)s, đơn vị %(unit)s.",
                count=series.count, first=hb.day(first), last=hb.day(last), unit=unit)),
        line_names=names,
        point_label=lambda when, name, text: f"{hb.day(when)}: {name + ' ' if len(names) > 1 else ''}{Fmt.num(text) if '/' not in text else text} {unit}",
        day=hb.day, number=Fmt.num, unit=unit, value=lambda text: text if "/" in text else Fmt.num(text),
    )
    return Markup(charts.svg(series, words, f"{prefix}-{index}"))  # noqa: S704 - charts.svg escapes every text it writes


def table_rows(series: hb.Series) -> list[dict[str, Any]]:
    rows: dict[datetime, dict[str, Any]] = {}
    for i, line in enumerate(series.lines):
        for p in line.points:
            rows.setdefault(p.when, {"when": p.when, "values": [""] * len(series.lines)})["values"][i] = Fmt.num(p.value)
    return [rows[k] for k in sorted(rows, reverse=True)]


def range_text(series: hb.Series) -> str:
    parts = []
    for line, (low, high) in zip(series.lines, series.ranges, strict=False):
        label = Fmt.line(line.code, "") if len(series.lines) > 1 else ""
        span = f"{Fmt.num(low)}–{Fmt.num(high)}" if low != Decimal(0) else f"< {Fmt.num(high)}"
        parts.append(f"{label} {span}".strip())
    return "; ".join(parts)
