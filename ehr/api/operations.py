"""FHIR operations on Patient: $match, $merge, $from-cccd-qr."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from ehr.api import access, http
from ehr.fhir import bundles, jsonio, parameters
from ehr.fhir.outcomes import Issue, bad_request, operation_outcome
from ehr.services import everything as everything_svc
from ehr.services import patients
from ehr.services import validate as validate_svc
from ehr.services.common import now_instant
from ehr.services.context import AccessContext
from ehr.store.runtime import Store

bp = Blueprint("fhir_operations", __name__, url_prefix="/fhir")
bp.before_request(access.require_context)

# (route, method) -> (resource type, operation code, definition canonical URL)
OPERATIONS = {
    ("/fhir/Patient/<rid>/$everything", "GET"): ("Patient", "everything", "http://hl7.org/fhir/OperationDefinition/Patient-everything"),
    ("/fhir/Patient/<rid>/$everything", "POST"): ("Patient", "everything", "http://hl7.org/fhir/OperationDefinition/Patient-everything"),
    ("/fhir/Patient/$everything", "GET"): ("Patient", "everything", "http://hl7.org/fhir/OperationDefinition/Patient-everything"),
    ("/fhir/<rtype>/$validate", "POST"): ("*", "validate", "http://hl7.org/fhir/OperationDefinition/Resource-validate"),
    ("/fhir/<rtype>/<rid>/$validate", "POST"): ("*", "validate", "http://hl7.org/fhir/OperationDefinition/Resource-validate"),
    ("/fhir/Patient/$match", "POST"): ("Patient", "match", "http://hl7.org/fhir/OperationDefinition/Patient-match"),
    ("/fhir/Patient/$merge", "POST"): ("Patient", "merge", "https://fhir.ehr-vn.org/OperationDefinition/Patient-merge"),
    ("/fhir/Patient/$from-cccd-qr", "POST"): ("Patient", "from-cccd-qr", "https://fhir.ehr-vn.org/OperationDefinition/Patient-from-cccd-qr"),
}


def _store() -> Store:
    return current_app.extensions["ehr.store"]  # type: ignore[no-any-return]


def _ctx() -> AccessContext:
    return access.request_context()


@bp.post("/Patient/$match")
def patient_match() -> Response:
    params = parameters.parse(http.json_body())
    candidate = parameters.value(params, "resource", "resource")
    if not isinstance(candidate, dict):
        raise bad_request("$match needs the candidate Patient in the 'resource' parameter", "Parameters.parameter:resource")
    only_certain = bool(parameters.value(params, "onlyCertainMatches", "Boolean"))
    count = parameters.value(params, "count", "Integer") or 10
    found = patients.match(_store(), _ctx(), candidate, only_certain, max(1, min(int(count), 100)))
    base = http.base_url()
    entries: list[tuple[dict[str, object], bytes | None]] = [
        (
            {
                "fullUrl": f"{base}/Patient/{m.version.logical_id}",
                "search": {"mode": "match", "score": m.score, "extension": [{"url": patients.MATCH_GRADE, "valueCode": m.grade}]},
            },
            m.version.body,
        )
        for m in found
    ]
    bundle = bundles.new_bundle("searchset", [], len(found), now_instant())
    return http.respond(bundles.encode(bundle, entries))


@bp.post("/Patient/$merge")
def patient_merge() -> Response:
    raw = http.json_body()
    params = parameters.parse(raw)
    result = patients.merge(
        _store(),
        _ctx(),
        parameters.value(params, "source-patient", "Reference"),
        [p["valueIdentifier"] for p in params.get("source-patient-identifier", []) if "valueIdentifier" in p],
        parameters.value(params, "target-patient", "Reference"),
        [p["valueIdentifier"] for p in params.get("target-patient-identifier", []) if "valueIdentifier" in p],
        bool(parameters.value(params, "preview", "Boolean")),
    )
    verb = "would move" if result.preview else "moved"
    outcome = operation_outcome([Issue("informational", f"merge {verb} {len(result.moved)} resources into the target", severity="information")])
    target = jsonio.loads_stored(result.target.body) if result.target.body else None
    return http.respond_json(parameters.build(("input", "resource", raw), ("outcome", "resource", outcome), ("result", "resource", target)))


@bp.post("/Patient/$from-cccd-qr")
def patient_from_qr() -> Response:
    if request.mimetype == "text/plain":
        payload = request.get_data(as_text=True)
    else:
        params = parameters.parse(http.json_body())
        payload = parameters.value(params, "payload", "String")
        if not isinstance(payload, str):
            raise bad_request("the 'payload' parameter (valueString) is required", "Parameters.parameter:payload")
    return http.respond_json(patients.from_cccd_qr(_store(), _ctx(), payload))



def _everything_response(page: everything_svc.EverythingPage, path: str) -> Response:
    base = http.base_url()
    links = [("self", f"{base}/{path}")]
    if page.next_token:
        links.append(("next", f"{base}/{path}?_page={page.next_token}"))
    entries: list[tuple[dict[str, object], bytes | None]] = [
        ({"fullUrl": f"{base}/{v.resource_type}/{v.logical_id}", "search": {"mode": "match"}}, v.body) for v in page.entries
    ]
    return http.respond(bundles.encode(bundles.new_bundle("searchset", links, page.total, now_instant()), entries))


def _operation_params() -> dict[str, str | None]:
    names = ("_since", "_type", "_count", "_page")
    if request.method == "POST" and request.mimetype in ("application/fhir+json", "application/json"):
        params = parameters.parse(http.json_body())
        out: dict[str, str | None] = {}
        for name in names:
            found = params.get(name) or []
            if found:
                item = found[0]
                value = next((v for k, v in item.items() if k.startswith("value")), None)
                out[name] = None if value is None else str(value)
        return out
    return {name: request.args.get(name) for name in names}


@bp.route("/Patient/<rid>/$everything", methods=["GET", "POST"])
def patient_everything(rid: str) -> Response:
    page = everything_svc.patient_everything(_store(), _ctx(), rid, _operation_params())
    return _everything_response(page, f"Patient/{rid}/$everything")


@bp.get("/Patient/$everything")
def all_patients_everything() -> Response:
    page = everything_svc.all_patients_everything(_store(), _ctx(), _operation_params())
    return _everything_response(page, "Patient/$everything")


def _validate(rtype: str, rid: str | None) -> Response:
    doc = http.json_body() if request.content_length else None
    mode = request.args.get("mode")
    resource = doc
    wrapped = isinstance(doc, dict) and doc.get("resourceType") == "Parameters" and any(
        p.get("name") in ("resource", "mode") for p in doc.get("parameter") or [] if isinstance(p, dict))
    if wrapped:
        params = parameters.parse(doc)
        resource = parameters.value(params, "resource", "resource")
        mode = parameters.value(params, "mode", "Code") or mode
    if resource is not None and resource.get("resourceType") != rtype:
        raise bad_request("the resource to validate is not of the type in the URL", "resourceType")
    mode = mode or ("update" if rid else "create")
    issues = validate_svc.validate(_store(), _ctx(), rtype, rid, resource, mode)
    if not any(i.severity in ("error", "fatal") for i in issues):
        issues = [Issue("informational", f"validation passed ({mode})", severity="information"), *issues]
    return http.respond_json(operation_outcome(issues))


@bp.post("/<rtype>/$validate")
def validate_type(rtype: str) -> Response:
    return _validate(rtype, None)


@bp.post("/<rtype>/<rid>/$validate")
def validate_instance(rtype: str, rid: str) -> Response:
    return _validate(rtype, rid)
