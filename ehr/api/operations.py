"""FHIR operations on Patient: $match, $merge, $from-cccd-qr."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, g, request

from ehr.api import http
from ehr.fhir import bundles, jsonio, parameters
from ehr.fhir.outcomes import Issue, bad_request, operation_outcome
from ehr.services import patients
from ehr.services.common import now_instant
from ehr.services.context import AccessContext
from ehr.store.runtime import Store

bp = Blueprint("fhir_operations", __name__, url_prefix="/fhir")

# (route, method) -> (resource type, operation code, definition canonical URL)
OPERATIONS = {
    ("/fhir/Patient/$match", "POST"): ("Patient", "match", "http://hl7.org/fhir/OperationDefinition/Patient-match"),
    ("/fhir/Patient/$merge", "POST"): ("Patient", "merge", "https://fhir.ehr-vn.org/OperationDefinition/Patient-merge"),
    ("/fhir/Patient/$from-cccd-qr", "POST"): ("Patient", "from-cccd-qr", "https://fhir.ehr-vn.org/OperationDefinition/Patient-from-cccd-qr"),
}


def _store() -> Store:
    return current_app.extensions["ehr.store"]  # type: ignore[no-any-return]


def _ctx() -> AccessContext:
    return AccessContext.open_api(request_id=g.get("request_id"))


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

