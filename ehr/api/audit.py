"""GET /fhir/AuditEvent and /fhir/AuditEvent/[id]: the audit trail as FHIR (read-only)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from ehr.api import access, http
from ehr.fhir import bundles, jsonio
from ehr.services import audit_events
from ehr.services.common import now_instant

bp = Blueprint("fhir_audit", __name__, url_prefix="/fhir")
bp.before_request(access.require_context)

SEARCH_PARAMS = [
    ("patient", "reference", "Events about this patient (Patient/[id] or [id])"),
    ("date", "date", "When the event was recorded. Prefixes: eq, ge, gt, le, lt."),
    ("action", "token", "The server's action code: read, vread, search, history, create, update, patch, delete, everything, "
               "match, export, login, authenticate, token.issue, break-glass, care.check-in..."),
]


@bp.get("/AuditEvent")
def search() -> Response:
    params = {k: request.args.getlist(k) for k in request.args}
    page = audit_events.search(current_app.extensions["ehr.store"], access.request_context(), params)
    base = http.base_url()
    links = [("self", f"{base}/AuditEvent")]
    if page.next_token:
        links.append(("next", f"{base}/AuditEvent?_page={page.next_token}"))
    entries: list[tuple[dict[str, object], bytes | None]] = [
        ({"fullUrl": f"{base}/AuditEvent/{e['id']}", "search": {"mode": "match"}}, jsonio.dumps(e)) for e in page.events
    ]
    return http.respond(bundles.encode(bundles.new_bundle("searchset", links, None, now_instant()), entries))


@bp.get("/AuditEvent/<rid>")
def read(rid: str) -> Response:
    return http.respond_json(audit_events.read(current_app.extensions["ehr.store"], access.request_context(), rid))
