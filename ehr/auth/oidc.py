"""Patient login through an external OpenID Connect provider (the national e-authentication
service in production), with Authlib.

Authorization code flow with PKCE (S256), `state` and `nonce` kept in the server-side session.
Authlib checks the ID token: signature against the provider's published keys (JWKS), issuer,
audience, expiry, nonce. We then require the configured claim (`EHR_OIDC_NATIONAL_ID_CLAIM`) to
be a 12-digit CCCD held by exactly one active registered Patient (looked up through the blind
index, never stored in plaintext). The patient account is created (or followed to a merged
record) on first login. Anything else is refused with a readable page and no session; both
outcomes are audited (without the number).
"""

from __future__ import annotations

import logging
import re
from typing import Any

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.flask_client import OAuth
from flask import Flask, Response, current_app, redirect, render_template, url_for
from flask_babel import gettext as _
from joserfc.errors import JoseError

from ehr.auth import bp, clock, sessions
from ehr.auth.current import caller
from ehr.services import accounts, auditing, logins

log = logging.getLogger("ehr.auth.oidc")
_CCCD = re.compile(r"^[0-9]{12}$")
_CLIENT = "ehr.oidc"


def install(app: Flask) -> None:
    """Register the provider when `EHR_OIDC_ISSUER` is set (discovery at its well-known URL)."""
    issuer = app.config.get("EHR_OIDC_ISSUER")
    if not issuer:
        return
    oauth = OAuth(app)
    app.extensions[_CLIENT] = oauth.register(
        "ehr_idp",
        client_id=app.config["EHR_OIDC_CLIENT_ID"],
        client_secret=app.config.get("EHR_OIDC_CLIENT_SECRET") or None,
        server_metadata_url=f"{issuer}/.well-known/openid-configuration",
        client_kwargs={"scope": "openid", "code_challenge_method": "S256", "default_timeout": 10},
    )


def enabled() -> bool:
    return _CLIENT in current_app.extensions


def _client() -> Any:
    return current_app.extensions[_CLIENT]


def _redirect_uri() -> str:
    return current_app.config.get("EHR_OIDC_REDIRECT_URI") or url_for("auth.oidc_callback", _external=True)


@bp.get("/oidc/login")
def oidc_login() -> Response | tuple[str, int]:
    if not enabled():
        return render_template("auth/refused.html", message=_("Đăng nhập qua định danh điện tử chưa được bật.")), 404
    try:
        return _client().authorize_redirect(_redirect_uri())  # type: ignore[no-any-return]
    except (AuthlibBaseError, JoseError, requests.RequestException, ValueError, KeyError) as exc:
        log.warning("identity provider unavailable: %s", type(exc).__name__)
        return render_template("auth/refused.html", message=_("Không kết nối được với nhà cung cấp định danh. Vui lòng thử lại sau.")), 503


def _refuse(message: str, status: int = 403) -> tuple[str, int]:
    who = caller()
    auditing.event(current_app.extensions["ehr.store"], who.anonymous(), "login.oidc", "failure")
    return render_template("auth/refused.html", message=message), status


@bp.get("/oidc/callback")
def oidc_callback() -> Response | tuple[str, int]:
    if not enabled():
        return render_template("auth/refused.html", message=_("Đăng nhập qua định danh điện tử chưa được bật.")), 404
    issuer = current_app.config["EHR_OIDC_ISSUER"]
    try:
        # Authlib checks `aud` only when told to (without it, a token for another client that
        # names us as `azp` would pass): the issuer and the audience are both pinned here.
        token = _client().authorize_access_token(claims_options={
            "iss": {"essential": True, "value": issuer},
            "aud": {"essential": True, "value": current_app.config["EHR_OIDC_CLIENT_ID"]},
        })
    except (AuthlibBaseError, JoseError, requests.RequestException, ValueError, KeyError, TypeError) as exc:
        # Wrong state, nonce, signature, issuer, audience, expiry, or the provider failed.
        log.info("identity provider login refused: %s", type(exc).__name__)
        return _refuse(_("Không xác minh được thông tin đăng nhập từ nhà cung cấp định danh. Vui lòng thử lại."))
    claims = token.get("userinfo") if isinstance(token, dict) else None
    number = claims.get(current_app.config["EHR_OIDC_NATIONAL_ID_CLAIM"]) if claims else None
    if not isinstance(number, str) or not _CCCD.match(number):
        return _refuse(_("Nhà cung cấp định danh không cung cấp số CCCD hợp lệ."))
    store = current_app.extensions["ehr.store"]
    account = accounts.patient_account_for(store, caller().anonymous(), number, now=clock.now())
    if account is None or not account.active:
        return _refuse(_("Không tìm thấy hồ sơ bệnh nhân đã đăng ký với số CCCD này. Vui lòng liên hệ cơ sở khám chữa bệnh."))
    sessions.begin(account.account_id, account.kind, mfa=True, now=clock.now())
    logins.logged_in(store, account, caller(), method="oidc")
    return redirect("/")
