"""CSRF protection (Flask-WTF) for every state-changing request of the web pages.

Exempt: the FHIR API blueprints (every blueprint mounted under /fhir) and the OAuth token
endpoint. They authenticate each request with a bearer token or a signed client assertion,
never with the session cookie, so a forged cross-site request carries nothing they would accept.

The synchronizer token lives in the session and has no time limit of its own (the session's
timeouts bound it). Before sign-in the session holds nothing else, so no row is stored: the token
travels in the session cookie, signed (ehr.auth.sessions). The Referer check Flask-WTF adds for
HTTPS is off: pages are served with `Referrer-Policy: no-referrer` (ehr.web.headers), under which
browsers send no Referer, and the token plus SameSite=Lax cookies already stop cross-site posts.

A page form sent after its signed-in session timed out would fail this check with a bare 400 and
lose what was typed: `ehr.auth.drafts` runs just before it, keeps the fields as an encrypted draft
of the account and sends the browser to the login page and back to the form (issue 14).
"""

from __future__ import annotations

from flask import Flask
from flask_wtf.csrf import CSRFProtect


def install(app: Flask) -> CSRFProtect:
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)
    app.config.setdefault("WTF_CSRF_SSL_STRICT", False)
    from ehr.auth import drafts

    drafts.install(app)  # its before-request hook must come before CSRFProtect's
    csrf = CSRFProtect(app)
    for blueprint in app.blueprints.values():
        if (blueprint.url_prefix or "").rstrip("/") == "/fhir":
            csrf.exempt(blueprint)
    from ehr.auth.token import token

    csrf.exempt(token)
    return csrf
