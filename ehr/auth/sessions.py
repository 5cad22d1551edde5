"""Server-side sessions for the web pages, in the `sessions` table.

Flask's default session is a signed cookie: logging out cannot revoke it, so a copied cookie
keeps working (flask-login #190). Here the cookie carries only a random 256-bit value; the
database keeps its SHA-256 and the session data, and the row is the session:

- logout deletes the row (a replayed cookie is then anonymous);
- signing in (and passing a password before the second factor) moves the data to a new value
  (no fixation: a cookie planted before login is worthless after it);
- a session ends after `EHR_STAFF_IDLE_MINUTES` (15) / `EHR_PATIENT_IDLE_MINUTES` (30) without a
  request, and `EHR_SESSION_MAX_HOURS` (12) after it began, whatever happens;
- visitors who never needed a session (no form, no login) get no row and no cookie;
- a visitor whose session holds nothing but the CSRF token of a form (the login page, the
  activation page) gets no row either: the token travels in the same cookie, signed with the
  session secret (`<token>.<issued>.<signature>`; session ids never hold a dot) and idle-limited
  like a patient session. A row is written only when there is something to keep: a signed-in
  session, a pending second factor, the identity provider's login state. So anonymous requests,
  pages and forms included, write nothing to the database.

The row is read lazily, on the first use of `flask.session`: API requests never touch it. The
last-seen time is written at most every `TOUCH_SECONDS`, so the idle limit may end a session up to
that much early, never late.

Cookie: `__Host-ehr_session`, Secure, HttpOnly, SameSite=Lax, Path=/, no Domain, no expiry date
(gone when the browser closes). Lax rather than Strict because the identity provider's redirect
back to `/auth/oidc/callback` is a cross-site navigation that must carry the login state.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator
from typing import Any, Callable

from flask import Flask, Request, Response, current_app, has_request_context, request, session
from flask.json.tag import TaggedJSONSerializer
from flask.sessions import SessionInterface, SessionMixin
from itsdangerous import BadSignature, Signer

from ehr.auth import clock
from ehr.store import access
from ehr.store.access import INTERNAL

SECURE_COOKIE = "__Host-ehr_session"
PLAIN_COOKIE = "ehr_session"  # development over plain HTTP only (EHR_SESSION_COOKIE_SECURE=false)
TOUCH_SECONDS = 30
_SERIALIZER = TaggedJSONSerializer()
_MINUTE = 60_000_000
# Session data that needs no row: the CSRF token of a form shown to an anonymous visitor.
VISITOR_KEYS = frozenset({"csrf_token"})


def _hash(value: str) -> bytes:
    return hashlib.sha256(value.encode("ascii", "replace")).digest()


class DatabaseSession(SessionMixin):
    """Session data loaded on first access; remembers whether it must move or end."""

    def __init__(self, loader: Callable[[], tuple[dict[str, Any], str | None, dict[str, Any] | None, bool]], had_cookie: bool) -> None:
        self._loader = loader
        self._data: dict[str, Any] | None = None
        self.sid: str | None = None  # the cookie value of the stored session
        self.row: dict[str, Any] | None = None
        self.had_cookie = had_cookie
        self.expired = False  # the cookie named a session that timed out
        self.expired_data: dict[str, Any] | None = None  # that session's data and account, for its form drafts
        self.expired_account: str | None = None
        self.modified = False
        self.rotate = False  # move the data to a new id (and forget the old row) when saving
        self.visitor_issued: int | None = None  # when the visitor cookie this request carried was signed

    @property
    def loaded(self) -> bool:
        return self._data is not None

    def _d(self) -> dict[str, Any]:
        if self._data is None:
            self._data, self.sid, self.row, self.expired = self._loader()
        return self._data

    def __getitem__(self, key: str) -> Any:
        return self._d()[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._d()[key] = value
        self.modified = True

    def __delitem__(self, key: str) -> None:
        del self._d()[key]
        self.modified = True

    def __iter__(self) -> Iterator[str]:
        return iter(self._d())

    def __len__(self) -> int:
        return len(self._d())

    def clear(self) -> None:
        if self._d():
            self._d().clear()
            self.modified = True


class DatabaseSessionInterface(SessionInterface):
    def cookie_name(self, app: Flask) -> str:
        return SECURE_COOKIE if app.config.get("EHR_SESSION_COOKIE_SECURE", True) else PLAIN_COOKIE

    @staticmethod
    def idle_us(app: Flask, data: dict[str, Any]) -> int:
        minutes = app.config["EHR_STAFF_IDLE_MINUTES"] if data.get("kind") == "staff" else app.config["EHR_PATIENT_IDLE_MINUTES"]
        return int(minutes) * _MINUTE

    @staticmethod
    def visitor_signer(app: Flask) -> Signer:
        return Signer(app.config["SECRET_KEY"], salt="ehr.visitor-session")

    def visitor_cookie(self, app: Flask, token: str, now: int) -> str:
        return self.visitor_signer(app).sign(f"{token}.{now // 1_000_000}").decode("ascii")

    def open_session(self, app: Flask, request: Request) -> DatabaseSession:
        value = request.cookies.get(self.cookie_name(app))
        store = app.extensions["ehr.store"]
        current: DatabaseSession

        def visitor(cookie: str) -> tuple[dict[str, Any], str | None, dict[str, Any] | None, bool]:
            try:
                token, _, issued = self.visitor_signer(app).unsign(cookie).decode("ascii").rpartition(".")
            except (BadSignature, UnicodeDecodeError):
                return {}, None, None, False
            now = clock.now(app.config)
            if not token or not issued.isdigit() or now - int(issued) * 1_000_000 > self.idle_us(app, {}):
                return {}, None, None, False  # a form left open too long: a new token (no "session expired": none began)
            current.visitor_issued = int(issued) * 1_000_000
            return {"csrf_token": token}, None, None, False

        def load() -> tuple[dict[str, Any], str | None, dict[str, Any] | None, bool]:
            if not value or len(value) > 128:
                return {}, None, None, False
            if "." in value:
                return visitor(value)
            key = _hash(value)
            with store.reading(INTERNAL) as uow:
                row = access.session_get(uow, key)
            if row is None:
                return {}, None, None, False  # unknown, ended or replayed after logout: anonymous
            try:
                data = _SERIALIZER.loads(row["data"])
            except ValueError:
                data = None
            now = clock.now(app.config)
            if not isinstance(data, dict) or row["expires_at"] <= now or now - row["last_seen"] > self.idle_us(app, data):
                with store.writing(INTERNAL) as uow:
                    access.session_delete(uow, key)
                if isinstance(data, dict):  # kept for this request only: a form it sends becomes a draft (ehr.auth.drafts)
                    current.expired_data, current.expired_account = data, row["account_id"]
                return {}, None, None, True
            return data, value, row, False

        current = DatabaseSession(load, had_cookie=value is not None)
        return current

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if not isinstance(session, DatabaseSession):
            return
        store = app.extensions["ehr.store"]
        name = self.cookie_name(app)
        secure = bool(app.config.get("EHR_SESSION_COOKIE_SECURE", True))
        if not session.loaded:
            return
        response.vary.add("Cookie")
        data = session._d()
        now = clock.now(app.config)
        visitor = bool(data) and set(data) <= VISITOR_KEYS
        if visitor and session.sid is None:
            # Only a form's CSRF token: the signed cookie carries it, no row (renewed as a row's
            # last-seen time would be, so the idle limit counts from the latest request).
            if session.modified or session.visitor_issued is None or now - session.visitor_issued >= TOUCH_SECONDS * 1_000_000:
                response.set_cookie(name, self.visitor_cookie(app, str(data["csrf_token"]), now), path="/", secure=secure,
                                    httponly=True, samesite="Lax")
            return
        if not data and session.sid is None:  # anonymous and nothing to keep: no transaction at all
            if session.had_cookie:
                response.delete_cookie(name, path="/", secure=secure, httponly=True, samesite="Lax")
            return
        with store.writing(INTERNAL) as uow:
            if session.sid is not None and (session.rotate or not data or visitor):
                access.session_delete(uow, _hash(session.sid))
                session.sid, session.row = None, None
            if visitor:
                # A stored session that has come down to a CSRF token (a login restarted): the row goes.
                response.set_cookie(name, self.visitor_cookie(app, str(data["csrf_token"]), now), path="/", secure=secure,
                                    httponly=True, samesite="Lax")
                return
            if not data:
                if session.had_cookie:
                    response.delete_cookie(name, path="/", secure=secure, httponly=True, samesite="Lax")
                return
            if session.sid is None:
                session.sid = secrets.token_urlsafe(32)  # 256 bits from the OS generator
                if secrets.randbelow(32) == 0:  # now and then: rows of sessions that ended unseen
                    longest = max(self.idle_us(app, {"kind": "staff"}), self.idle_us(app, {}))
                    access.purge_sessions(uow, now, now - longest - _MINUTE)
                access.session_put(uow, dict(
                    session_hash=_hash(session.sid), account_id=data.get("aid"), created_at=now, last_seen=now,
                    expires_at=now + int(app.config["EHR_SESSION_MAX_HOURS"]) * 60 * _MINUTE, data=_SERIALIZER.dumps(data),
                ))
                response.set_cookie(name, session.sid, path="/", secure=secure, httponly=True, samesite="Lax")
            elif session.modified:
                assert session.row is not None
                access.session_put(uow, {**session.row, "account_id": data.get("aid"), "last_seen": now, "data": _SERIALIZER.dumps(data)})
            elif session.row is not None and now - session.row["last_seen"] >= TOUCH_SECONDS * 1_000_000 and not _background():
                access.touch_session(uow, _hash(session.sid), now)


def install(app: Flask) -> None:
    app.session_interface = DatabaseSessionInterface()


# --- what the login views do with the session ---------------------------------------------------


def _current() -> DatabaseSession:
    current = session._get_current_object()  # type: ignore[attr-defined]
    assert isinstance(current, DatabaseSession), "the database session interface is not installed"
    return current


def begin(account_id: str, kind: str, *, mfa: bool, now: int) -> None:
    """Start a signed-in session under a new id (the old one, and its data, are dropped)."""
    current = _current()
    current.clear()
    current.rotate = True
    current.update({"aid": account_id, "kind": kind, "mfa": mfa, "auth_at": now})


def begin_challenge(challenge: dict[str, Any], next_path: str | None) -> None:
    """A password passed, the second factor is due: a fresh session id that holds only that."""
    current = _current()
    current.clear()
    current.rotate = True
    current["pending"] = challenge
    if next_path:
        current["next"] = next_path


def end() -> None:
    """Log out: the row goes and the cookie is cleared (a form shown later in the same request
    starts a new anonymous session under a new id). The account's form drafts go too: they
    survive a session that timed out, not one its owner ended."""
    current = _current()
    account_id = current.get("aid")
    current.clear()
    current.rotate = True
    if isinstance(account_id, str):
        from ehr.services import drafts

        drafts.discard_all(current_app.extensions["ehr.store"], account_id)


def expired() -> bool:
    """Did this request's cookie name a session that timed out (to say so on the login page)?"""
    current = _current()
    current._d()
    return current.expired


def expired_signed_in() -> tuple[str, str | None] | None:
    """(account id, raw CSRF token) of the signed-in session this request's cookie named, when that
    session timed out during this request's load; None otherwise (no cookie, an unknown or ended
    session, a session that never signed in)."""
    current = _current()
    current._d()
    data, account_id = current.expired_data, current.expired_account
    if not current.expired or data is None or not account_id or data.get("aid") != account_id:
        return None
    token = data.get("csrf_token")
    return account_id, token if isinstance(token, str) else None


def _background() -> bool:
    """A page's own refresh (today's list every 20 s) is not the user at work: it does not keep the
    session alive, so an unattended screen still signs out at the idle limit. The header is one a
    cross-site page cannot send without a CORS preflight this server never grants."""
    return has_request_context() and request.headers.get(BACKGROUND_HEADER) == "1"


BACKGROUND_HEADER = "X-EHR-Refresh"
