"""Who is calling the API: bearer tokens of system clients, or the open mode of development.

`EHR_API_AUTH=required` (production default): every API request but the CapabilityStatement and
the SMART discovery document needs `Authorization: Bearer <token>` from `/auth/token`.
`EHR_API_AUTH=open` (development, tests): a request without a token acts as an unrestricted
anonymous principal; a request with a token is still checked and restricted. Production refuses
the open mode at start-up.

Also here: the audit records of refusals (a 401 for a token that was presented and failed, and
every policy denial of the request; a request that presents no token at all is refused without a
record) and the fail-closed answer when the audit trail cannot be written.
"""

from __future__ import annotations

from flask import Flask, Response, current_app, g, request

from ehr.api.http import outcome_response
from ehr.fhir.outcomes import FhirError, Issue
from ehr.services import auditing, clients, policy
from ehr.services.context import AccessContext
from ehr.store.audit import AuditUnavailable
from ehr.store.runtime import Store

PUBLIC_ENDPOINTS = frozenset({"fhir.metadata", "fhir.smart_configuration", "fhir.openapi", "auth.token"})


def _store() -> Store:
    return current_app.extensions["ehr.store"]  # type: ignore[no-any-return]


def source_hash() -> bytes:
    """A keyed hash of the caller's address: the audit trail can link requests of one source
    without storing the address itself."""
    return _store().blind.token("audit-source", request.remote_addr or "")


def _unauthorized(reason: str) -> FhirError:
    return FhirError(401, [Issue("login", reason)], {"WWW-Authenticate": 'Bearer realm="ehr", error="invalid_token"'})


def request_context() -> AccessContext:
    """The caller's access context, resolved once per request."""
    ctx: AccessContext | None = g.get("ehr_ctx")
    if ctx is not None:
        return ctx
    header = request.headers.get("Authorization")
    rid = g.get("request_id")
    if header is not None:
        scheme, _, token = header.partition(" ")
        resolved = clients.resolve(_store(), token.strip(), rid, source_hash()) if scheme.lower() == "bearer" else None
        if resolved is None:
            # A credential was tried and failed: a security event, audited. A header without one
            # ("Bearer" alone, empty) is refused like no header at all, without a record.
            g.ehr_auth_failed = bool(token.strip())
            raise _unauthorized("the access token is missing, expired, revoked or not a bearer token")
        ctx = resolved
    elif current_app.config.get("EHR_API_AUTH") == "open":
        ctx = AccessContext.open_api(request_id=rid)
    else:
        # No credentials at all: 401 and nothing written (no audit row, no session); an anonymous
        # caller must not be able to grow the audit trail or learn anything from it.
        raise _unauthorized("authentication required: get an access token from /auth/token (SMART Backend Services)")
    g.ehr_ctx = ctx
    return ctx


def require_context() -> None:
    """Blueprint hook: resolve the caller before any other work (a 401 comes before a 415)."""
    g.ehr_denials = policy.collect_denials()
    if request.endpoint not in PUBLIC_ENDPOINTS:
        request_context()


def install(app: Flask) -> None:
    @app.after_request
    def _audit_refusals(response: Response) -> Response:
        store = app.extensions["ehr.store"]
        if g.pop("ehr_auth_failed", False):
            anonymous = AccessContext(principal="anonymous", kind="anonymous", request_id=g.get("request_id"), source_hash=source_hash())
            _safely(lambda: auditing.event(store, anonymous, "authenticate", "failure"))
        denials = g.pop("ehr_denials", None) or []
        ctx = g.get("ehr_ctx")
        for denial in denials:
            if ctx is not None:
                _safely(lambda d=denial: auditing.event(
                    store, ctx, d.action, "denied", resource_type=d.resource_type, logical_id=d.logical_id, compartment=d.compartment,
                ))
        return response

    @app.errorhandler(AuditUnavailable)
    def _audit_down(exc: AuditUnavailable) -> Response:
        # Fail closed: the record of this access could not be made durable, so nothing is sent.
        return outcome_response([Issue("transient", "the audit trail is unavailable; no data was sent, retry later")], 503, {"Retry-After": "5"})


def _safely(write: object) -> None:
    try:
        write()  # type: ignore[operator]
    except AuditUnavailable:
        pass  # a refusal carries no data: the response may still go out
