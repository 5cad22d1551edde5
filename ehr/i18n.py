"""Languages of the web pages: Vietnamese (default, the source language of every string) and English.

Strings are written in Vietnamese in templates and code (`_("Đăng nhập")`); the English catalog
`ehr/translations/en/LC_MESSAGES/messages.po` translates them. The language is `?lang=` when
given (remembered in a `lang` cookie), else the cookie, else Vietnamese.

No manual compile step: at start-up the `.po` catalogs of each language are compiled into the
instance folder (`instance/translations/<locale>/LC_MESSAGES/messages.mo`) when the compiled file
is missing or was made from other text (a SHA-256 of the sources sits beside it). Workers starting together write to temporary files and
rename, so none ever reads half a file. A read-only instance folder falls back to a temporary one.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, Response, request
from flask_babel import Babel, get_locale

LOCALES = ("vi", "en")
DEFAULT_LOCALE = "vi"
COOKIE = "lang"
SOURCE = Path(__file__).resolve().parent / "translations"


def select_locale() -> str:
    for candidate in (request.args.get("lang"), request.cookies.get(COOKIE)):
        if candidate in LOCALES:
            return candidate
    return DEFAULT_LOCALE


def compile_catalogs(source: Path, target: Path) -> None:
    """Compile each `<locale>/LC_MESSAGES/` folder of `source` into `target`'s `messages.mo` (the
    domain Flask-Babel reads) if stale. Every `.po` of the folder goes in, `messages.po` first:
    each area of the site may keep its own catalog file (`messages.po` for the login pages,
    `clinic.po` for the clinic workspace...); a string in two files keeps the first translation."""
    for folder in sorted(p for p in source.glob("*/LC_MESSAGES") if p.is_dir()):
        files = sorted(folder.glob("*.po"), key=lambda p: (p.name != "messages.po", p.name))
        if not files:
            continue
        digest = hashlib.sha256(b"".join(p.name.encode() + b"\0" + p.read_bytes() for p in files)).hexdigest()
        mo = target / folder.relative_to(source) / "messages.mo"
        stamp = mo.with_name(mo.name + ".sha256")
        if mo.exists() and stamp.exists() and stamp.read_text().strip() == digest:
            continue
        merged = None
        for path in files:
            with path.open("rb") as fh:
                catalog = read_po(fh, locale=folder.parent.name)
            if merged is None:
                merged = catalog
                continue
            for message in catalog:
                if message.id and merged.get(message.id, context=message.context) is None:
                    merged[message.id] = message
        mo.parent.mkdir(parents=True, exist_ok=True)
        for out, write in ((mo, lambda fh: write_mo(fh, merged)), (stamp, lambda fh: fh.write(digest.encode()))):
            tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
            with tmp.open("wb") as fh:
                write(fh)
            os.replace(tmp, out)


def init_app(app: Flask) -> None:
    target = Path(app.instance_path) / "translations"
    try:
        compile_catalogs(SOURCE, target)
    except OSError:
        target = Path(tempfile.mkdtemp(prefix="ehr-translations-"))
        compile_catalogs(SOURCE, target)
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(target)
    app.config["BABEL_DEFAULT_LOCALE"] = DEFAULT_LOCALE
    Babel(app, locale_selector=select_locale)

    @app.context_processor
    def _language() -> dict[str, object]:
        return {"current_locale": str(get_locale() or DEFAULT_LOCALE), "locales": LOCALES}

    @app.after_request
    def _remember_choice(response: Response) -> Response:
        chosen = request.args.get("lang")
        if chosen in LOCALES and request.cookies.get(COOKIE) != chosen:
            response.set_cookie(COOKIE, chosen, max_age=365 * 86400, path="/", samesite="Lax", httponly=True,
                                secure=bool(app.config.get("EHR_SESSION_COOKIE_SECURE", True)))
        return response
