"""Bulk Data Access 2.0 at /fhir: $export kick-off, status polling, cancel, file download."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request, stream_with_context

from ehr.api import access, http
from ehr.fhir import jsonio
from ehr.fhir.outcomes import FhirError, Issue, bad_request, operation_outcome
from ehr.services import export
from ehr.services.context import AccessContext
from ehr.store.runtime import Store

bp = Blueprint("fhir_bulk", __name__, url_prefix="/fhir")
bp.before_request(access.require_context)

SYSTEM_OPERATIONS = {("/fhir/$export", "GET"): ("export", "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export")}
TYPE_OPERATIONS = {
    ("/fhir/Patient/$export", "GET"): ("Patient", "export", "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export"),
    ("/fhir/Group/<rid>/$export", "GET"): ("Group", "export", "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export"),
}


def _store() -> Store:
    return current_app.extensions["ehr.store"]  # type: ignore[no-any-return]


def _settings() -> export.ExportSettings:
    return current_app.extensions["ehr.export"]  # type: ignore[no-any-return]


def _ctx() -> AccessContext:
    return access.request_context()


def _kick_off(level: str, group_id: str | None) -> Response:
    if "respond-async" not in (request.headers.get("Prefer") or ""):
        raise bad_request("bulk export is asynchronous: send 'Prefer: respond-async'", "Prefer")
    params = {name: request.args.get(name) for name in ("_outputFormat", "_type", "_since")}
    for name in request.args:
        if name not in params:
            raise bad_request(f"parameter '{name[:64]}' is not supported by $export", name[:64])
    url = request.path + (f"?{request.query_string.decode()}" if request.query_string else "")
    job_id = export.kick_off(_store(), _ctx(), level, group_id, params, f"{http.base_url().rsplit('/fhir', 1)[0]}{url}")
    response = http.respond(None, 202, {"Content-Location": f"{http.base_url()}/$export-status/{job_id}"})
    return response


@bp.get("/$export")
def export_system() -> Response:
    return _kick_off("system", None)


@bp.get("/Patient/$export")
def export_patients() -> Response:
    return _kick_off("patient", None)


@bp.get("/Group/<rid>/$export")
def export_group(rid: str) -> Response:
    return _kick_off("group", rid)


@bp.get("/$export-status/<job_id>")
def export_status(job_id: str) -> Response:
    state = export.status(_store(), _ctx(), job_id, f"{http.base_url()}/$export-file")
    if not state.done:
        return http.respond(None, 202, {"X-Progress": state.progress, "Retry-After": "2"})
    if state.error:
        return http.respond(jsonio.dumps(operation_outcome([Issue("exception", f"export failed ({state.error})", severity="fatal")])), 500)
    return http.respond(jsonio.dumps(state.manifest), 200, mimetype="application/json")


@bp.delete("/$export-status/<job_id>")
def export_cancel(job_id: str) -> Response:
    export.cancel(_store(), _ctx(), job_id, _settings())
    return http.respond(None, 202)


@bp.get("/$export-file/<job_id>/<name>")
def export_file(job_id: str, name: str) -> Response:
    if not name.endswith(".ndjson"):
        raise FhirError.one(404, "not-found", "no such export file")
    chunks = export.open_file(_store(), _ctx(), job_id, name[: -len(".ndjson")], _settings())
    response = Response(stream_with_context(chunks), 200, mimetype="application/fhir+ndjson")
    response.headers["Cache-Control"] = "no-store"
    return response
