"""Login pages: password, second factor (TOTP challenge and enrolment), activation, logout.

A wrong login name, a wrong password, an account not yet activated or disabled all get the same
page with the same message (the login name kept, the password not), so the page tells nothing
about which accounts exist. Too many attempts get 429 without the password being looked at.
"""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, redirect, render_template, request, session, url_for
from flask_babel import gettext as _

from ehr.auth import bp, clock, sessions
from ehr.auth.current import caller, current_account, local_path
from ehr.auth.forms import ActivateForm, CodeForm, LoginForm
from ehr.services import accounts, logins, totp
from ehr.services.logins import Challenge, Limits
from ehr.store.runtime import Store

Page = Response | tuple[str, int] | tuple[str, int, dict[str, str]]


def _store() -> Store:
    return current_app.extensions["ehr.store"]  # type: ignore[no-any-return]


def _limits() -> Limits:
    c = current_app.config
    return Limits(max_failures=c["EHR_LOGIN_MAX_FAILURES"], window_seconds=c["EHR_LOGIN_WINDOW_MINUTES"] * 60,
                  backoff_after=c["EHR_LOGIN_BACKOFF_AFTER"], source_max_failures=c["EHR_LOGIN_SOURCE_MAX_FAILURES"],
                  account_max_failures=c["EHR_LOGIN_ACCOUNT_MAX_FAILURES"])


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
    context = {"form": form, "secret": secret, "uri": totp.provisioning_uri(secret, label, current_app.config["EHR_TOTP_ISSUER"])}
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
