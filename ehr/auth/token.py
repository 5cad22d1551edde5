"""POST /auth/token: SMART Backend Services client credentials (RFC 6749 section 4.4, RFC 7523)."""

from __future__ import annotations

from flask import Response, current_app, g, jsonify, request

from ehr.api import access, http
from ehr.auth import bp
from ehr.services import auditing, clients
from ehr.services.context import AccessContext


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


@bp.post("/token")
def token() -> Response:
    if request.mimetype != "application/x-www-form-urlencoded":
        return _error(clients.OAuthError("invalid_request", "the token request is an application/x-www-form-urlencoded form"))
    form = {k: v for k, v in request.form.items()}
    caller = AccessContext(principal="anonymous", kind="anonymous", request_id=g.get("request_id"), source_hash=access.source_hash())
    try:
        issued = clients.exchange(current_app.extensions["ehr.store"], form, http.token_url(), caller)
    except clients.OAuthError as exc:
        return _error(exc)
    return _no_store(jsonify(access_token=issued.access_token, token_type="bearer", expires_in=issued.expires_in, scope=issued.scope))


def _error(exc: clients.OAuthError) -> Response:
    if request.form.get("client_assertion"):
        # A client credential was presented and refused: audited. A request carrying none (wrong
        # content type, no assertion) is answered without a record.
        store = current_app.extensions["ehr.store"]
        caller = AccessContext(principal="anonymous", kind="anonymous", request_id=g.get("request_id"), source_hash=access.source_hash())
        auditing.event(store, caller, "token.issue", "failure")
    response = _no_store(jsonify(error=exc.error, error_description=exc.description))
    response.status_code = exc.status
    if exc.status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="ehr"'
    return response
