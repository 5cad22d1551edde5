"""Login pages: password, second factor (TOTP challenge and enrolment), activation, logout.

A wrong login name, a wrong password, an account not yet activated or disabled all get the same
page with the same message (the login name kept, the password not), so the page tells nothing
about which accounts exist. Too many attempts get 429 without the password being looked at.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import segno
from flask import Response, current_app, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import Markup

from ehr.auth import bp, clock, sessions
from ehr.auth.current import caller, current_account, current_context, local_path, login_required
from ehr.auth.forms import ActivateForm, CodeForm, LoginForm, PasswordChangeForm
from ehr.services import accounts, directory, logins, totp
from ehr.services.logins import Challenge, Limits
from ehr.store.runtime import Store

Page = Response | tuple[str, int] | tuple[str, int, dict[str, str]]
logger = logging.getLogger(__name__)


def _store() -> Store:
    return current_app.extensions["ehr.store"]  # type: ignore[no-any-return]


def _limits() -> Limits:
    c = current_app.config
    return Limits(max_failures=c["EHR_LOGIN_MAX_FAILURES"], window_seconds=c["EHR_LOGIN_WINDOW_MINUTES"] * 60,
                  backoff_after=c["EHR_LOGIN_BACKOFF_AFTER"], source_max_failures=c["EHR_LOGIN_SOURCE_MAX_FAILURES"],
                  account_max_failures=c["EHR_LOGIN_ACCOUNT_MAX_FAILURES"])


ROLE_NAMES = {"doctor": _l("Bác sĩ"), "nurse": _l("Điều dưỡng"), "receptionist": _l("Lễ tân"), "admin": _l("Quản trị"),
              "patient": _l("Bệnh nhân")}
FACILITY_NAME_SECONDS = 300  # a facility's name in the page header is read again after this long


def _notices() -> dict[str, str]:
    return {
        "logged-out": _("Bạn đã đăng xuất."),
        "session-expired": _("Phiên làm việc đã hết hạn. Vui lòng đăng nhập lại."),
        "restart": _("Vui lòng đăng nhập lại từ đầu."),
        "activated": _("Tài khoản đã được kích hoạt. Vui lòng đăng nhập."),
    }


def _too_many(retry_after: int) -> str:
    minutes = max(1, (retry_after + 59) // 60)
    return _("Quá nhiều lần thử. Vui lòng thử lại sau %(minutes)s phút.", minutes=minutes)


def _throttled(template: str, retry_after: int, **context: Any) -> Page:
    return render_template(template, error=_too_many(retry_after), **context), 429, {"Retry-After": str(max(1, retry_after))}


def _signed_in(account: accounts.Account, *, mfa: bool, target: str | None, method: str = "password") -> Response:
    """A session with rights begins (under a new id) and the login is audited."""
    sessions.begin(account.account_id, account.kind, mfa=mfa, now=clock.now())
    logins.logged_in(_store(), account, caller(), method)
    if account.must_change_password:
        return redirect(url_for("auth.password"))  # a temporary password: replace it first
    return redirect(local_path(target) or "/")


@bp.after_request
def _no_store(response: Response) -> Response:
    # Login pages carry tokens and personal names: never cached by browsers or proxies.
    response.headers.setdefault("Cache-Control", "no-store")
    return response


@bp.route("/login", methods=["GET", "POST"])
def login() -> Page:
    from ehr.auth import oidc

    form = LoginForm()
    context: dict[str, Any] = {"form": form, "oidc": oidc.enabled(), "notice": _notices().get(request.args.get("m", ""))}
    if request.method == "GET":
        form.next.data = local_path(request.args.get("next")) or ""
        return render_template("auth/login.html", **context)
    if not form.validate_on_submit():
        return render_template("auth/login.html", error=_("Vui lòng nhập tên đăng nhập và mật khẩu."), **context)
    outcome = logins.password_step(_store(), form.login.data, form.password.data, limits=_limits(), now=clock.now(), caller=caller())
    form.password.data = ""
    if outcome.status == "throttled":
        return _throttled("auth/login.html", outcome.retry_after, **context)
    if outcome.status != "ok" or outcome.account is None:
        return render_template("auth/login.html", error=_("Tên đăng nhập hoặc mật khẩu không đúng."), **context)
    account = outcome.account
    if not logins.needs_totp(account):
        return _signed_in(account, mfa=False, target=form.next.data)
    challenge = logins.start_challenge(_store(), account, outcome.login_key, clock.now())
    sessions.begin_challenge(challenge.to_dict(), local_path(form.next.data))
    return redirect(url_for("auth.totp_enrol" if challenge.enrol_secret else "auth.totp_check"))


def _challenge() -> Challenge | None:
    return Challenge.from_dict(session.get("pending"))


def _restart() -> Response:
    session.pop("pending", None)
    return redirect(url_for("auth.login", m="restart"))


def _code_outcome(challenge: Challenge, code: str) -> logins.Outcome:
    return logins.totp_step(_store(), challenge, code, limits=_limits(), now=clock.now(), caller=caller())


@bp.route("/totp", methods=["GET", "POST"])
def totp_check() -> Page:
    challenge = _challenge()
    if challenge is None:
        return redirect(url_for("auth.login"))
    if challenge.enrol_secret is not None:
        return redirect(url_for("auth.totp_enrol"))
    form = CodeForm()
    if request.method == "GET" or not form.validate_on_submit():
        return render_template("auth/totp.html", form=form)
    outcome = _code_outcome(challenge, form.code.data)
    if outcome.status == "ok" and outcome.account is not None:
        return _signed_in(outcome.account, mfa=True, target=session.get("next"))
    if outcome.status == "throttled":
        return _throttled("auth/totp.html", outcome.retry_after, form=form)
    if outcome.status in ("exhausted", "expired"):
        return _restart()
    form.code.data = ""
    return render_template("auth/totp.html", form=form, error=_("Mã xác thực không đúng hoặc đã được dùng."))


@bp.route("/totp/enrol", methods=["GET", "POST"])
def totp_enrol() -> Page:
    """Set up the authenticator app: at first login of doctors and admins (before any rights),
    or later by anyone signed in who wants a second factor."""
    challenge = _challenge()
    signed_in = current_account()
    if challenge is None and signed_in is not None and not signed_in.has_totp:
        challenge = logins.start_challenge(_store(), signed_in, _store().blind.token("login.account", signed_in.account_id), clock.now())
        session["pending"] = challenge.to_dict()
    if challenge is None or challenge.enrol_secret is None:
        return redirect(url_for("auth.login"))
    secret = logins.enrolment_secret(_store(), challenge)
    account = accounts.get(_store(), challenge.account_id)
    if secret is None or account is None:
        return _restart()
    label = account.username or f"patient-{account.account_id[:8]}"
    form = CodeForm()
    uri = totp.provisioning_uri(secret, label, current_app.config["EHR_TOTP_ISSUER"])
    context = {"form": form, "secret": secret, "uri": uri, "qr": _qr_svg(uri)}
    if request.method == "GET" or not form.validate_on_submit():
        return render_template("auth/enrol.html", **context)
    outcome = _code_outcome(challenge, form.code.data)
    if outcome.status == "ok" and outcome.account is not None:
        if signed_in is not None:
            session.pop("pending", None)
            session["mfa"] = True
            return redirect("/")
        return _signed_in(outcome.account, mfa=True, target=session.get("next"))
    if outcome.status == "throttled":
        return _throttled("auth/enrol.html", outcome.retry_after, **context)
    if outcome.status in ("exhausted", "expired"):
        return _restart()
    form.code.data = ""
    return render_template("auth/enrol.html", error=_("Mã xác thực không đúng. Hãy nhập mã đang hiện trong ứng dụng."), **context)


def _qr_svg(uri: str) -> Markup:
    """The otpauth URI as a QR code, inline SVG made here: the CSP allows no data: URI, and
    sending the secret to a QR service would disclose it."""
    svg = segno.make(uri, error="m").svg_inline(scale=4, border=4, dark="#000", light="#fff", svgclass="totp-qr",
                                                 title=_("Mã QR thiết lập xác thực hai bước"))
    return Markup(svg.replace("<svg ", '<svg role="img" ', 1))  # named by its <title>


def _rejection(reason: str) -> str:
    return {
        "short": _("Mật khẩu cần ít nhất 10 ký tự."),
        "long": _("Mật khẩu quá dài (tối đa 128 ký tự)."),
        "common": _("Mật khẩu này quá phổ biến, hãy chọn mật khẩu khác."),
        "login-name": _("Mật khẩu không được chứa tên đăng nhập."),
    }.get(reason, _("Mật khẩu không hợp lệ."))


@bp.route("/activate", methods=["GET", "POST"])
def activate() -> Page:
    form = ActivateForm()
    if request.method == "GET":
        return render_template("auth/activate.html", form=form)
    valid = form.validate_on_submit()
    mismatch = form.password.data != form.confirm.data
    if not valid or mismatch:
        error = _("Hai mật khẩu không khớp.") if mismatch else _("Vui lòng điền đủ các ô.")
        return render_template("auth/activate.html", form=form, error=error)
    outcome = logins.activate(_store(), form.login.data, form.code.data, form.password.data, limits=_limits(), now=clock.now(), caller=caller())
    if outcome.status == "ok":
        return redirect(url_for("auth.login", m="activated"))
    if outcome.status == "throttled":
        return _throttled("auth/activate.html", outcome.retry_after, form=form)
    if outcome.status == "rejected":
        return render_template("auth/activate.html", form=form, error=_rejection(outcome.reason))
    form.code.data = ""
    return render_template("auth/activate.html", form=form,
                           error=_("Mã kích hoạt không đúng, đã dùng hoặc đã hết hạn, hoặc không khớp với tên đăng nhập / CCCD."))


@bp.post("/logout")
def logout() -> Response:
    # The CSRF token was checked before the view (CSRFProtect): a third-party page cannot log
    # anyone out. An already anonymous visitor just lands on the login page.
    account = current_account()
    if account is not None:
        logins.logged_out(_store(), account, caller())
    sessions.end()
    return redirect(url_for("auth.login", m="logged-out"))


def _after_change(account: accounts.Account) -> Response:
    """Every session of the account ended with the change; this person continues in a new one."""
    sessions.begin(account.account_id, account.kind, mfa=bool(session.get("mfa")), now=clock.now())
    target = url_for("clinic.today") if account.kind == "staff" else url_for("healthbook.index")
    return redirect(target)


@bp.route("/password", methods=["GET", "POST"])
@login_required()
def password() -> Page:
    """Change one's password (staff and patients); the only page a temporary password opens."""
    account = current_account()
    assert account is not None
    form = PasswordChangeForm()
    context: dict[str, Any] = {"form": form, "forced": account.must_change_password}
    if request.method == "GET":
        return render_template("auth/password.html", **context)
    error = None
    if not form.validate_on_submit():
        if not form.current.data:
            error = _("Vui lòng nhập mật khẩu hiện tại.")
        elif not form.password.data:
            error = _("Vui lòng nhập mật khẩu mới.")
        else:
            error = _("Vui lòng nhập lại mật khẩu mới.") if not form.confirm.data else _("Vui lòng điền đủ các ô.")
    elif form.password.data != form.confirm.data:
        error = _("Hai mật khẩu mới không khớp.")
    if error:
        return render_template("auth/password.html", error=error, **context), 422
    ctx = current_context()
    assert ctx is not None
    outcome = accounts.change_password(_store(), ctx, account, form.current.data, form.password.data, now=clock.now())
    if outcome.status == "ok":
        return _after_change(account)
    if outcome.status == "throttled":
        return _throttled("auth/password.html", outcome.retry_after, **context)
    message = {
        "wrong": _("Mật khẩu hiện tại không đúng."),
        "same": _("Mật khẩu mới phải khác mật khẩu hiện tại."),
    }.get(outcome.status) or _("Mật khẩu mới: %(rule)s", rule=_rejection(outcome.reason))
    return render_template("auth/password.html", error=message, **context), 422


@dataclass(frozen=True)
class Who:
    """Who is signed in, as the page header shows it."""

    name: str
    role: str
    facility: str
    kind: str


_facility_names: dict[str, tuple[str, float]] = {}


def _facility_name(organization_id: str) -> str:
    """The facility's name for the header, kept a few minutes per process: it changes rarely, and
    reading it on every page would add a row to the audit trail for every page."""
    cached = _facility_names.get(organization_id)
    if cached and time.monotonic() - cached[1] < FACILITY_NAME_SECONDS:
        return cached[0]
    ctx = current_context()
    found = directory.get(_store(), ctx, organization_id) if ctx else None
    name = found.name if found else ""
    _facility_names[organization_id] = (name, time.monotonic())
    return name


def who() -> Who | None:
    """The signed-in person for the header: staff with name, role and facility; a patient with
    the role only (their name is in their record, which the health book shows)."""
    if "ehr_who" in g:
        return g.ehr_who  # type: ignore[no-any-return]
    found = None
    try:
        account = current_account() if session.get("aid") else None
        if account is not None:
            name = accounts.display_name(_store(), account.account_id) or "" if account.kind == "staff" else ""
            facility = _facility_name(account.organization_id) if account.organization_id else ""
            found = Who(name, str(ROLE_NAMES.get(account.role, account.role)), facility, account.kind)
    except Exception as exc:  # noqa: BLE001  the header is not worth a second failure (an error page renders it too)
        logger.warning("page header without the signed-in person: %s", type(exc).__name__)
    g.ehr_who = found
    return found


@bp.app_context_processor
def _header() -> dict[str, Any]:
    return {"signed_in_as": who}  # a function: only pages with a header look the person up
