"""Clinic page helpers: sign staff in (TOTP enrolment included) and post forms with their CSRF token."""

from __future__ import annotations

import re
from typing import Any

from auth.auth_helpers import Browser, Clock
from ehr.services import totp

_SECRET = re.compile(r"<code>([A-Z2-7]{32})</code>")
_TOKEN = re.compile(r'<input[^>]*name="csrf_token"[^>]*value="([^"]+)"')


def sign_in(browser: Browser, clock: Clock, username: str) -> None:
    """Password, then TOTP enrolment when the role needs it (doctors, admins)."""
    response = browser.login(username)
    if response.headers.get("Location") == "/auth/totp/enrol":
        secret = _SECRET.search(browser.get("/auth/totp/enrol").get_data(as_text=True)).group(1)  # type: ignore[union-attr]
        assert browser.code(totp.code_at(secret, clock()), "/auth/totp/enrol").status_code == 302


def post_form(browser: Browser, path: str, data: dict[str, Any], page: str | None = None) -> Any:
    """POST with the CSRF token of the page the form is on (`page`, default the same path)."""
    found = _TOKEN.search(browser.get(page or path.split("?")[0]).get_data(as_text=True))
    assert found, "no CSRF token"
    return browser.post(path, {**data, "csrf_token": found.group(1)})
