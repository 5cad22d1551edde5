"""Every string of the health book has its English translation in the health book's catalog."""

from __future__ import annotations

import io
import re
from pathlib import Path

from babel.messages.extract import extract
from babel.messages.pofile import read_po
from jinja2.ext import babel_extract

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "ehr" / "translations" / "en" / "LC_MESSAGES" / "healthbook.po"


def _strings() -> set[str]:
    found: set[str] = set()
    for path in ROOT.joinpath("templates", "healthbook").glob("*.html"):
        found |= {m[1] for m in extract(babel_extract, io.BytesIO(path.read_bytes()))}
    for path in ROOT.joinpath("ehr", "healthbook").glob("*.py"):
        found |= {m[1] for m in extract("python", io.BytesIO(path.read_bytes()), keywords={"_": None, "_l": None, "gettext": None})}
    return {s for s in found if isinstance(s, str)}


def test_every_health_book_string_has_an_english_translation():
    with CATALOG.open("rb") as fh:
        catalog = read_po(fh)
    strings = _strings()
    assert len(strings) > 250
    assert not sorted(s for s in strings if not (catalog.get(s) and catalog.get(s).string))
    assert not sorted(m.id for m in catalog if m.id and m.id not in strings)  # no stale entries
    for message in catalog:  # placeholders survive translation
        if message.id and "%(" in message.id:
            assert sorted(re.findall(r"%\((\w+)\)s", message.id)) == sorted(re.findall(r"%\((\w+)\)s", message.string)), message.id
