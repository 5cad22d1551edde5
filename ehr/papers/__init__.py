"""Printed papers as PDF: an HTML template (templates/papers/) with a print stylesheet, rendered by
WeasyPrint. Pure rendering: the data comes from ehr.services.papers, the request's language from
Flask-Babel; nothing here reads the store.

The font is DejaVu Sans, shipped in ehr/static/fonts/ (a Latin + Vietnamese subset, licence in
LICENSE.txt there), so every Vietnamese letter and tone mark prints the same on any machine,
whatever fonts it has installed. WeasyPrint may fetch nothing but those font files: the templates
carry no links to images or stylesheets, and any other URL is refused (no network access, no
local file read while rendering).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import render_template

FONTS = Path(__file__).resolve().parent.parent / "static" / "fonts"
_FONT_URI = FONTS.as_uri() + "/"

PAPERS = ("prescription", "summary", "lab", "activation")


class PapersUnavailable(RuntimeError):
    """WeasyPrint cannot run here (Pango missing): the service works, only PDFs are refused."""


def _fonts_only(url_fetcher: Any) -> Any:
    class FontsOnly(url_fetcher):  # type: ignore[misc,valid-type]
        """Fetch the shipped font files, refuse every other URL."""

        def fetch(self, url: str, headers: Any = None) -> Any:
            if not url.startswith(_FONT_URI) or ".." in url:
                raise ValueError("papers fetch nothing but the shipped fonts")
            return super().fetch(url, headers)

    return FontsOnly


def _font_css() -> str:
    return "".join(
        f'@font-face {{ font-family: "Paper Sans"; font-weight: {weight}; src: url("{_FONT_URI}{file}"); }}\n'
        for weight, file in (("normal", "DejaVuSans.ttf"), ("bold", "DejaVuSans-Bold.ttf"))
    )


def html(paper: str, **context: Any) -> str:
    """The paper's HTML (templates/papers/<paper>.html), in the request's language."""
    if paper not in PAPERS:
        raise ValueError(f"unknown paper {paper!r}")
    return render_template(f"papers/{paper}.html", **context)


def pdf(paper: str, **context: Any) -> bytes:
    """The paper as PDF bytes (A5 portrait for the prescription and the slip, A4 for the others)."""
    # Imported here, not at start-up: WeasyPrint needs Debian's Pango (libpango-1.0-0,
    # libpangoft2-1.0-0), and a machine without it still runs everything but the PDFs.
    try:
        from weasyprint import CSS, HTML
        from weasyprint.text.fonts import FontConfiguration
        from weasyprint.urls import URLFetcher
    except OSError as exc:
        raise PapersUnavailable("printing needs Pango: apt-get install libpango-1.0-0 libpangoft2-1.0-0") from exc
    fonts = FontConfiguration()
    fetcher = _fonts_only(URLFetcher)(allowed_protocols=("file",), fail_on_errors=False)
    document = HTML(string=html(paper, **context), base_url=_FONT_URI, url_fetcher=fetcher)
    out = document.write_pdf(stylesheets=[CSS(string=_font_css(), font_config=fonts, url_fetcher=fetcher)], font_config=fonts)
    assert out is not None
    return bytes(out)
