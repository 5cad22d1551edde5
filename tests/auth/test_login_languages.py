"""Vietnamese first, English on request; every string of the login pages exists in both."""

from __future__ import annotations

import io
from pathlib import Path

from babel.messages.extract import extract
from babel.messages.pofile import read_po
from jinja2.ext import babel_extract

from ehr import i18n

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "ehr" / "translations" / "en" / "LC_MESSAGES" / "messages.po"


def _source_strings() -> set[str]:
    found: set[str] = set()
    for path in [*ROOT.joinpath("templates").glob("auth/*.html"), ROOT / "templates" / "base.html"]:
        found |= {m[1] for m in extract(babel_extract, io.BytesIO(path.read_bytes()))}
    for path in [*ROOT.joinpath("ehr", "auth").glob("*.py")]:
        found |= {m[1] for m in extract("python", io.BytesIO(path.read_bytes()), keywords={"_": None, "_l": None, "gettext": None})}
    return {s for s in found if isinstance(s, str)}


def test_every_page_string_has_an_english_translation():
    with CATALOG.open("rb") as fh:
        catalog = read_po(fh)
    strings = _source_strings()
    assert len(strings) > 30
    missing = sorted(s for s in strings if not (catalog.get(s) and catalog.get(s).string))
    assert not missing


def test_vietnamese_by_default_english_on_request_and_remembered(browser):
    page = browser.get("/auth/login").get_data(as_text=True)
    assert '<html lang="vi">' in page and "Đăng nhập" in page and "Mật khẩu" in page
    english = browser.get("/auth/login?lang=en")
    assert '<html lang="en">' in english.get_data(as_text=True) and "Log in" in english.get_data(as_text=True)
    assert "lang=en" in english.headers["Set-Cookie"]
    assert "Password" in browser.get("/auth/login").get_data(as_text=True)  # the cookie keeps the choice
    assert "Mật khẩu" in browser.get("/auth/login?lang=vi").get_data(as_text=True)
    assert '<html lang="vi">' in browser.get("/auth/login?lang=fr").get_data(as_text=True)  # unknown: ignored


def test_wrong_password_message_in_english(browser, staff):
    browser.get("/?lang=en")
    page = browser.login(staff("nurse"), "not-the-password-1").get_data(as_text=True)
    assert "Wrong username or password." in page


def test_catalogs_compile_at_start_without_a_manual_step(tmp_path):
    i18n.compile_catalogs(i18n.SOURCE, tmp_path)
    compiled = tmp_path / "en" / "LC_MESSAGES" / "messages.mo"
    assert compiled.stat().st_size > 1000
    stamp = compiled.stat().st_mtime_ns
    i18n.compile_catalogs(i18n.SOURCE, tmp_path)  # up to date: left alone
    assert compiled.stat().st_mtime_ns == stamp
    (compiled.with_name("messages.mo.sha256")).write_text("stale")
    i18n.compile_catalogs(i18n.SOURCE, tmp_path)  # made from other text: compiled again
    assert (compiled.with_name("messages.mo.sha256")).read_text() != "stale"


def test_every_catalog_file_of_a_language_is_merged(tmp_path):
    """Each area of the site may keep its own .po file; they compile into the one domain."""
    from babel.messages.catalog import Catalog
    from babel.messages.mofile import read_mo
    from babel.messages.pofile import write_po

    folder = tmp_path / "src" / "en" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    for name, pairs in {"messages.po": [("Đăng nhập", "Log in")], "clinic.po": [("Đăng nhập", "Sign in"), ("Khám bệnh", "Visit")]}.items():
        catalog = Catalog(locale="en")
        for msgid, text in pairs:
            catalog.add(msgid, text)
        with (folder / name).open("wb") as fh:
            write_po(fh, catalog)
    i18n.compile_catalogs(tmp_path / "src", tmp_path / "out")
    with (tmp_path / "out" / "en" / "LC_MESSAGES" / "messages.mo").open("rb") as fh:
        merged = read_mo(fh)
    assert merged.get("Đăng nhập").string == "Log in" and merged.get("Khám bệnh").string == "Visit"
