"""Server-drawn charts: an accessible SVG with a focusable, named element per measurement, the
normal range shaded, and every text escaped."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from decimal import Decimal
from xml.etree import ElementTree

from ehr.fhir import healthbook as hb
from ehr.healthbook import charts

SVG = "{http://www.w3.org/2000/svg}"


def _series(values: list[str], ranges: tuple[tuple[Decimal, Decimal], ...] = ((Decimal("3.9"), Decimal("6.4")),)) -> hb.Series:
    start = datetime(2026, 1, 5, 8, tzinfo=hb.VN)
    points = tuple(hb.Point(start + timedelta(days=30 * i), Decimal(v), v) for i, v in enumerate(values))
    return hb.Series("14749-6", "Glucose", "mmol/L", (hb.Line("14749-6", "Glucose", points),), ranges)


def _words(title: str = "Đường huyết lúc đói") -> charts.Words:
    return charts.Words(title=title, desc="4 lần đo", line_names=("Đường huyết",), unit="mmol/L",
                        point_label=lambda when, name, text: f"{hb.day(when)}: {text} mmol/L",
                        day=hb.day, number=lambda d: str(d).replace(".", ","))


def test_a_named_focusable_element_per_measurement():
    drawn = ElementTree.fromstring(charts.svg(_series(["7.8", "7.1", "6.6", "6.0"]), _words(), "c0"))
    assert drawn.get("role") == "group" and drawn.get("aria-labelledby") == "c0-title c0-desc"
    assert drawn.find(f"{SVG}title").text == "Đường huyết lúc đói" and drawn.find(f"{SVG}desc").text == "4 lần đo"
    points = drawn.findall(f"{SVG}g")
    assert [p.get("tabindex") for p in points] == ["0"] * 4
    assert points[0].get("aria-label") == "05/01/2026: 7.8 mmol/L" and points[0].find(f"{SVG}title").text == "05/01/2026: 7.8 mmol/L"
    assert [p.find(f"{SVG}text").text for p in points] == ["7.8", "7.1", "6.6", "6.0"]


def test_the_normal_range_is_a_band_inside_the_plot():
    drawn = ElementTree.fromstring(charts.svg(_series(["7.8", "5.0"]), _words(), "c1"))
    [band] = [r for r in drawn.findall(f"{SVG}rect") if "band" in (r.get("class") or "")]
    dots = [float(c.get("cy")) for c in drawn.iter(f"{SVG}circle") if c.get("class") == "dot"]
    top, bottom = float(band.get("y")), float(band.get("y")) + float(band.get("height"))
    assert dots[0] < top and top < dots[1] < bottom  # 7.8 above the band, 5.0 inside it


def test_the_grid_is_labelled_in_the_pages_number_format():
    drawn = ElementTree.fromstring(charts.svg(_series(["5.1", "5.3", "5.2"], ranges=()), _words(), "c3"))
    ticks = [t.text for t in drawn.iter(f"{SVG}text") if t.get("class") == "axis" and "/" not in (t.text or "")]
    assert "5,2" in ticks and not any("E" in t for t in ticks)


def test_one_measurement_and_hostile_text_are_fine():
    drawn = charts.svg(_series(["6.0"], ranges=()), _words('<script>alert("x")</script>'), "c2")
    assert "<script>" not in drawn and "&lt;script&gt;" in drawn
    assert len(re.findall(r'<g class="pt', drawn)) == 1
