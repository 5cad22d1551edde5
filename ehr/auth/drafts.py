"""A form sent after its session ended is kept, not lost (issue 14).

A doctor types a visit for twenty minutes, the staff idle limit (15) ends the session, and the
"Lưu" button used to answer a bare `400 Bad Request` (the CSRF check found no session) with
everything typed gone. Now, before the CSRF check, a POST to a page under /clinic/ or /healthbook/
whose cookie names a signed-in session that has just timed out, and whose CSRF token is the one
that session issued, is answered with a 303 to the login page (`m=session-expired`,
`next=<the page>`); its fields, without the CSRF token and anything named like a password, are
kept as that account's encrypted draft of the page (ehr.services.drafts). Nothing else is
written: the form's action does not run. After signing in again, `next` opens the page, whose view
calls `take(request.path)` to get the fields back (once) and sets the `form_draft_notice` the
templates show.

Both conditions guard against a planted draft: the session cookie is SameSite=Lax (a cross-site
POST does not carry it) and the CSRF token must be the expired session's own. A request with no
such session (no cookie, an unknown or logged-out one, an anonymous visitor's) gets today's CSRF
answer. The draft is keyed by the page the form was posted to, which is where `next` leads; a
POST-only action (no page at its URL) keeps nothing and just goes to the login page.

Drafts survive a timeout, never an ended session: logging out deletes the account's drafts
(ehr.auth.sessions.end). They are never shown to another account (the account is in the key and
the ciphertext's associated data) and expire after `EHR_FORM_DRAFT_HOURS`. Only the first request
after the timeout sees the old session (it deletes the row): if another tab of the same browser
made a request first, the form gets the old 400.
"""

from __future__ import annotations

import hmac
import re
from typing import Any

from flask import Flask, current_app, g, redirect, request, url_for
from flask_babel import gettext as _
from itsdangerous import BadData, URLSafeTimedSerializer
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from ehr.auth import clock, sessions
from ehr.auth.current import current_account
from ehr.services import accounts
from ehr.services import drafts as store_drafts

PREFIXES = ("/clinic/", "/healthbook/")
# Never kept: the CSRF token, and fields that hold or confirm a password, a secret or a one-time code.
_SECRET_FIELD = re.compile(r"csrf|passw(or)?d|secret|^(confirm|current|code|otp|totp)$", re.IGNORECASE)


def _store() -> Any:
    return current_app.extensions["ehr.store"]


def _issued_by(token: str | None, raw: str) -> bool:
    """Is `token` (the form's signed CSRF token) one Flask-WTF made from the session token `raw`?
    The check of `flask_wtf.csrf.validate_csrf`, against the expired session's token."""
    if not token:
        return False
    config = current_app.config
    serializer = URLSafeTimedSerializer(config.get("WTF_CSRF_SECRET_KEY") or current_app.secret_key, salt="wtf-csrf-token")
    try:
        signed = serializer.loads(token, max_age=config.get("WTF_CSRF_TIME_LIMIT", 3600))
    except BadData:
        return False
    return isinstance(signed, str) and hmac.compare_digest(signed, raw)


def _is_page(path: str) -> bool:
    """Does `path` answer a GET (a page to come back to), not only the POST?"""
    adapter = current_app.create_url_adapter(request)
    try:
        if adapter is None:
            return False
        adapter.match(path, method="GET")
    except HTTPException:
        return False
    return True


def fields_of_form() -> dict[str, str]:
    """The submitted fields worth keeping: no CSRF token, nothing that looks like a password (the
    first value of a repeated name, as the form views read them)."""
    return {k: v for k, v in request.form.items() if not _SECRET_FIELD.search(k)}


def after_expiry() -> Response | None:
    """Before the CSRF check: the 303 to the login page for a form sent after its session timed
    out (its fields kept as a draft), or None to carry on as usual."""
    if request.method != "POST" or not request.path.startswith(PREFIXES):
        return None
    expired = sessions.expired_signed_in()
    if expired is None:
        return None
    account_id, raw_token = expired
    field = current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
    if raw_token is None or not _issued_by(request.form.get(field), raw_token):
        return None
    account = accounts.get(_store(), account_id)
    if account is None or not account.active:
        return None
    path = request.path
    if not _is_page(path):
        return redirect(url_for("auth.login", m="session-expired"), 303)
    store_drafts.keep(_store(), account_id, path, fields_of_form(), now=clock.now(),
                      hours=int(current_app.config["EHR_FORM_DRAFT_HOURS"]))
    return redirect(url_for("auth.login", m="session-expired", next=path), 303)


def take(path: str) -> dict[str, str] | None:
    """The signed-in account's draft of the page `path`, deleted as it is returned, or None.
    When there is one, `form_draft_notice` tells the page's template to say so."""
    account = current_account()
    if account is None:
        return None
    fields = store_drafts.take(_store(), account.account_id, path, now=clock.now())
    if fields is not None:
        g.ehr_form_draft_restored = True
    return fields


def notice() -> str | None:
    """The notice of a restored draft, on the page that restored one (else None)."""
    if g.get("ehr_form_draft_restored"):
        return _("Đã khôi phục nội dung bạn nhập trước khi phiên hết hạn.")
    return None


def install(app: Flask) -> None:
    """Call before CSRFProtect registers its check: this hook must run first."""
    app.before_request(after_expiry)

    @app.context_processor
    def _draft_notice() -> dict[str, str | None]:
        return {"form_draft_notice": notice()}
