"""The home page in a real browser: Vietnamese first, readable on a phone."""

from __future__ import annotations


def test_home_page_is_vietnamese_and_fits_a_phone(page) -> None:
    page.set_viewport_size({"width": 360, "height": 740})
    page.goto("/")
    assert page.locator("html").get_attribute("lang") == "vi"
    assert "Hồ sơ sức khỏe điện tử" in page.locator("h1").inner_text()
    # no horizontal scrolling at 360 px
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
