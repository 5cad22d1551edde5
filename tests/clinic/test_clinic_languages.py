"""Every string of the clinic pages exists in English too; Vietnamese is the default."""

from __future__ import annotations

import io
from pathlib import Path

from babel.messages.extract import extract
from babel.messages.pofile import read_po
from jinja2.ext import babel_extract

ROOT = Path(__file__).resolve().parents[2]
CATALOGS = sorted((ROOT / "ehr" / "translations" / "en" / "LC_MESSAGES").glob("*.po"))  # merged at start-up


def _clinic_strings() -> set[str]:
    found: set[str] = set()
    for path in ROOT.joinpath("templates", "clinic").glob("*.html"):
        found |= {m[1] for m in extract(babel_extract, io.BytesIO(path.read_bytes()))}
    for path in ROOT.joinpath("ehr", "clinic").glob("*.py"):
        found |= {m[1] for m in extract("python", io.BytesIO(path.read_bytes()), keywords={"_": None, "_l": None, "gettext": None})}
    return {s for s in found if isinstance(s, str)}


def test_every_clinic_string_has_an_english_translation():
    translated: set[str] = set()
    for path in CATALOGS:
        with path.open("rb") as fh:
            translated |= {m.id for m in read_po(fh) if m.id and m.string}
    strings = _clinic_strings()
    assert len(strings) > 100
    assert not sorted(strings - translated)


def test_form_errors_follow_the_language(signed_in):
    from clinic_helpers import post_form

    browser = signed_in("receptionist")
    english = post_form(browser, "/clinic/patients/new?lang=en", {"action": "save", "cccd": "123"}).get_data(as_text=True)
    assert "A CCCD number has exactly 12 digits." in english and '<html lang="en">' in english
    vietnamese = post_form(browser, "/clinic/patients/new?lang=vi", {"action": "save", "cccd": "123"}).get_data(as_text=True)
    assert "Số CCCD phải có đúng 12 chữ số." in vietnamese
