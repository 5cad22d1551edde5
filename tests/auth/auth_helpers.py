"""Web login test helpers: an HTTPS test browser, a movable clock, patients, audit and account rows."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select

from ehr.services import resources
from ehr.services.context import AccessContext
from ehr.store.keys import now_us
from ehr.store.schema import accounts as accounts_table
from ehr.store.schema import audit_log

OPS = AccessContext.operator("test")
BASE = "https://localhost"  # `__Host-` cookies are Secure: the test browser speaks HTTPS
COOKIE = "__Host-ehr_session"
PASSWORD = "đúng-mật-khẩu-9173"
CCCD = "001190012345"
_TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


@dataclass
class Clock:
    """Microseconds since the epoch; tests move it instead of sleeping."""

    now: int = field(default_factory=now_us)

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * 1_000_000)


class Browser:
    """The Flask test client over HTTPS, with form helpers (CSRF token taken from the page)."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(path, base_url=BASE, **kw)

    def post(self, path: str, data: dict[str, str] | None = None, **kw: Any) -> Any:
        return self.client.post(path, base_url=BASE, data=data or {}, **kw)

    def token(self, path: str = "/auth/login") -> str:
        match = _TOKEN.search(self.get(path).get_data(as_text=True))
        assert match, "no CSRF token on " + path
        return match.group(1)

    def submit(self, path: str, data: dict[str, str], **kw: Any) -> Any:
        return self.post(path, {**data, "csrf_token": self.token(path)}, **kw)

    def login(self, login: str, password: str = PASSWORD, next_path: str = "") -> Any:
        return self.submit("/auth/login", {"login": login, "password": password, "next": next_path})

    def code(self, code: str, path: str = "/auth/totp") -> Any:
        return self.submit(path, {"code": code})

    def session_cookie(self) -> str | None:
        cookie = self.client.get_cookie(COOKIE, domain="localhost")
        return cookie.value if cookie else None

    def logout(self) -> Any:
        return self.post("/auth/logout", {"csrf_token": self.token()})


def register_patient(store: Any, cccd: str = CCCD, name: str = "Trần Thị Bình") -> str:
    doc = {"resourceType": "Patient", "active": True, "name": [{"text": name}],
           "identifier": [{"system": store.systems.cccd, "value": cccd}]}
    return str(resources.create(store, OPS, doc).version.logical_id)


def audit_rows(store: Any, action: str | None = None) -> list[dict[str, Any]]:
    stmt = select(audit_log).order_by(audit_log.c.seq)
    if action:
        stmt = stmt.where(audit_log.c.action == action)
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(stmt).mappings()]


def account_row(store: Any, **where: Any) -> dict[str, Any]:
    stmt = select(accounts_table)
    for column, value in where.items():
        stmt = stmt.where(accounts_table.c[column] == value)
    with store.engine.connect() as conn:
        row = conn.execute(stmt).mappings().one()
    return dict(row)
