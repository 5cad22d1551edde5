"""Who is signed in to the web pages, as the access context services expect.

Page views of the clinic workspace and the health book use these:

    @bp.get("/records")
    @login_required(kind="staff", roles=("doctor", "nurse"))
    def records():
        ctx = current_context()   # policy.staff_context(...) of the signed-in person
        ...

The account is read from the database on every request (one primary-key read), so disabling an
account, resetting its second factor or changing its role takes effect on its next request. An
account signed in with a temporary password is sent to the password change page from every page
behind `login_required` until it has chosen its own.
"""

from __future__ import annotations

from functools import wraps
from typing import Any, Callable, Iterable, TypeVar, cast

from flask import abort, current_app, g, redirect, request, session, url_for

from ehr.api.access import source_hash
from ehr.auth import sessions
from ehr.services import accounts
from ehr.services.accounts import Account
from ehr.services.context import AccessContext
from ehr.services.logins import Caller

F = TypeVar("F", bound=Callable[..., Any])
CHANGE_EXEMPT = frozenset({"auth.password", "auth.logout"})  # what a temporary password may open


def caller() -> Caller:
    """This request's id and the keyed hash of its source address, for the audit trail."""
    return Caller(request_id=g.get("request_id"), source_hash=source_hash())


def current_account() -> Account | None:
    """The signed-in account (every factor it needs passed, still active), or None."""
    if "ehr_account" in g:
        return cast("Account | None", g.ehr_account)
    account_id = session.get("aid")
    account = accounts.get(current_app.extensions["ehr.store"], account_id) if isinstance(account_id, str) else None
    if account_id is not None and (account is None or not account.active or (account.totp_required and not session.get("mfa"))):
        sessions.end()  # disabled, deleted, or now needs a second factor this session never passed
        account = None
    g.ehr_account = account
    return account


def current_context() -> AccessContext | None:
    """The AccessContext of the signed-in person (staff_context / patient_context), or None."""
    account = current_account()
    if account is None:
        return None
    who = caller()
    return account.context(who.request_id, who.source_hash)


def local_path(value: str | None) -> str | None:
    """`value` if it is a path on this site ("/..."), else None: `next` never leads elsewhere."""
    if not value or not value.startswith("/") or value.startswith("//") or value.startswith("/\\"):
        return None
    if any(ord(ch) < 0x20 or ch in "\\" for ch in value) or len(value) > 2000:
        return None
    return value


def login_required(kind: str | None = None, roles: Iterable[str] | None = None) -> Callable[[F], F]:
    """Send anonymous visitors to the login page (back here afterwards); 403 for the wrong
    kind of principal (`staff`, `patient`) or role."""
    allowed = frozenset(roles or ())

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            account = current_account()
            if account is None:
                target = request.full_path.rstrip("?") if request.method == "GET" else None
                params = {"next": target} if target else {}
                if sessions.expired():
                    params["m"] = "session-expired"
                return redirect(url_for("auth.login", **params))
            if account.must_change_password and request.endpoint not in CHANGE_EXEMPT:
                # A temporary password (set by an admin) opens nothing but the page that replaces it.
                return redirect(url_for("auth.password"))
            if (kind and account.kind != kind) or (allowed and account.role not in allowed):
                abort(403)
            return view(*args, **kwargs)

        return cast(F, wrapped)

    return decorator
