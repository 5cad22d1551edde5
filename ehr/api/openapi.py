"""GET /fhir/openapi.json: an OpenAPI 3.0 description of the FHIR routes, for schema-driven tools.

Derived, like the CapabilityStatement, from what the app really serves: one path per URL rule under
/fhir in the app's URL map (every method but HEAD/OPTIONS), and the search parameters declared in
fhir/search-parameters.json (the registry the query parser uses). Type-level routes take the type as
a path parameter whose values are the served types; searches on the types that have declared
parameters also get a path of their own (`/fhir/Patient`, ...) listing those parameters and their
modifiers. Rules this module has no description for still appear, with a generic body.

The document holds no data: it is built once per app and cached; only `servers` follows the request.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from flask import Flask, Response, current_app

from ehr.api import http
from ehr.api.routes import bp
from ehr.fhir import jsonio
from ehr.fhir.resources import SERVED_TYPES
from ehr.fhir.searchparams import COMMON, registry

FHIR_JSON = "application/fhir+json"
_RULE_ARG = re.compile(r"<(?:[a-zA-Z_][a-zA-Z0-9_]*(?:\([^)]*\))?:)?([a-zA-Z_][a-zA-Z0-9_]*)>")
_CACHE_KEY = "ehr.openapi"

# --- reusable schemas ----------------------------------------------------------------------------

ID_PATTERN = r"^[A-Za-z0-9\-.]{1,64}$"
DATE_PATTERN = r"^(eq|ne|gt|lt|ge|le|sa|eb|ap)?[0-9]{4}(-[0-9]{2}(-[0-9]{2}(T[0-9]{2}:[0-9]{2}(:[0-9]{2})?(Z|[+-][0-9]{2}:[0-9]{2})?)?)?)?$"
NUMBER_PATTERN = r"^(eq|ne|gt|lt|ge|le|sa|eb|ap)?-?[0-9]{1,9}(\.[0-9]{1,6})?(\|[^|]*\|[^|]*)?$"

SCHEMAS: dict[str, Any] = {
    "Resource": {
        "type": "object",
        "description": "A FHIR R4 resource in JSON (validated by the server against the R4 rules).",
        "required": ["resourceType"],
        "properties": {
            "resourceType": {"type": "string"},
            "id": {"type": "string", "pattern": ID_PATTERN},
            "meta": {"type": "object"},
        },
        "additionalProperties": True,
    },
    "Bundle": {
        "type": "object",
        "required": ["resourceType", "type"],
        "properties": {
            "resourceType": {"type": "string", "enum": ["Bundle"]},
            "type": {"type": "string", "enum": ["transaction", "batch"]},
            "entry": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "fullUrl": {"type": "string"},
                        "resource": {"$ref": "#/components/schemas/Resource"},
                        "request": {
                            "type": "object",
                            "required": ["method", "url"],
                            "properties": {
                                "method": {"type": "string", "enum": ["GET", "POST", "PUT", "PATCH", "DELETE"]},
                                "url": {"type": "string"},
                                "ifMatch": {"type": "string"},
                                "ifNoneExist": {"type": "string"},
                            },
                        },
                    },
                },
            },
        },
    },
    "Parameters": {
        "type": "object",
        "required": ["resourceType"],
        "properties": {
            "resourceType": {"type": "string", "enum": ["Parameters"]},
            "parameter": {
                "type": "array",
                "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}, "additionalProperties": True},
            },
        },
    },
    "JsonPatch": {
        "type": "array",
        "items": {
            "type": "object",
            "required": ["op", "path"],
            "properties": {
                "op": {"type": "string", "enum": ["add", "remove", "replace", "move", "copy", "test"]},
                "path": {"type": "string"},
                "from": {"type": "string"},
                "value": {},
            },
        },
    },
    "OperationOutcome": {
        "type": "object",
        "required": ["resourceType", "issue"],
        "properties": {
            "resourceType": {"type": "string", "enum": ["OperationOutcome"]},
            "issue": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["severity", "code"],
                    "properties": {
                        "severity": {"type": "string", "enum": ["fatal", "error", "warning", "information"]},
                        "code": {"type": "string"},
                        "diagnostics": {"type": "string"},
                        "expression": {"type": "array", "items": {"type": "string"}},
                    },
                },
            },
        },
    },
}

EXAMPLE_PATIENT = {
    "resourceType": "Patient",
    "name": [{"family": "Nguyễn", "given": ["Văn", "An"], "text": "Nguyễn Văn An"}],
    "gender": "male",
    "birthDate": "1985-03-02",
}
EXAMPLE_TRANSACTION = {
    "resourceType": "Bundle",
    "type": "transaction",
    "entry": [
        {"fullUrl": "urn:uuid:2f0f3c5e-7d0e-4b8a-9d1c-1a2b3c4d5e6f", "resource": EXAMPLE_PATIENT, "request": {"method": "POST", "url": "Patient"}},
        {
            "resource": {
                "resourceType": "Observation", "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
                "subject": {"reference": "urn:uuid:2f0f3c5e-7d0e-4b8a-9d1c-1a2b3c4d5e6f"},
                "valueQuantity": {"value": 72, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"},
            },
            "request": {"method": "POST", "url": "Observation"},
        },
    ],
}

# --- parameters ----------------------------------------------------------------------------------


def _param(name: str, where: str, schema: dict[str, Any], description: str = "", required: bool = False, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "in": where, "schema": schema, "required": required or where == "path"}
    if description:
        out["description"] = description
    out.update(extra)
    return out


def _path_param(name: str) -> dict[str, Any]:
    if name == "rtype":
        return _param(name, "path", {"$ref": "#/components/schemas/ResourceType"}, "A FHIR resource type", example="Patient")
    if name == "rid":
        return _param(name, "path", {"type": "string", "pattern": ID_PATTERN}, "Logical id of the resource")
    if name == "vid":
        return _param(name, "path", {"type": "string", "pattern": r"^[0-9]{1,9}$"}, "Version id")
    if name == "job_id":
        return _param(name, "path", {"type": "string"}, "Bulk export job id")
    if name == "name":
        return _param(name, "path", {"type": "string", "pattern": r"^[A-Za-z]+(-[0-9]+)?\.ndjson$"}, "Export file name")
    return _param(name, "path", {"type": "string"})


def _value_schema(kind: str) -> dict[str, Any]:
    if kind == "date":
        return {"type": "string", "pattern": DATE_PATTERN}
    if kind in ("number", "quantity"):
        return {"type": "string", "pattern": NUMBER_PATTERN}
    return {"type": "string", "minLength": 1}


RESULT_PARAMS = [
    _param("_count", "query", {"type": "integer", "minimum": 0, "maximum": 1000}, "Page size"),
    _param("_page", "query", {"type": "string"}, "Opaque paging token from a previous page's link"),
    _param("_sort", "query", {"type": "string"}, "Comma-separated sortable parameters, '-' for descending"),
    _param("_include", "query", {"type": "string"}, "Type:param[:TargetType]"),
    _param("_revinclude", "query", {"type": "string"}, "Type:param[:TargetType]"),
    _param("_summary", "query", {"type": "string", "enum": ["true", "false", "text", "data", "count"]}),
    _param("_elements", "query", {"type": "string"}),
    _param("_total", "query", {"type": "string", "enum": ["none", "estimate", "accurate"]}),
    _param("_format", "query", {"type": "string", "enum": ["json", "application/fhir+json", "application/json"]}),
]
COMMON_PARAMS = [_param(code, "query", _value_schema(kind), f"common parameter ({kind})") for code, kind in COMMON.items()]


def _search_params(rtype: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for p in registry().for_type(rtype):
        out.append(_param(p.code, "query", _value_schema(p.type), f"{p.type}: {p.description}"))
        for modifier in sorted(p.modifiers):
            schema = {"type": "string", "enum": ["true", "false"]} if modifier == "missing" else _value_schema(p.type)
            out.append(_param(f"{p.code}:{modifier}", "query", schema, f"{p.type} with the :{modifier} modifier"))
    return out


def _form_schema(params: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "object", "properties": {p["name"]: p["schema"] for p in params if p["in"] == "query"}}


IF_MATCH = _param("If-Match", "header", {"type": "string", "pattern": r'^W/"[0-9]{1,9}"$'}, "Version-aware update: the ETag of the version replaced")
PREFER_RETURN = _param("Prefer", "header", {"type": "string", "enum": ["return=minimal", "return=representation", "return=OperationOutcome"]})

# --- operations ----------------------------------------------------------------------------------


def _body(schema_name: str, content_type: str = FHIR_JSON, example: Any = None, required: bool = True) -> dict[str, Any]:
    media: dict[str, Any] = {"schema": {"$ref": f"#/components/schemas/{schema_name}"}}
    if example is not None:
        media["example"] = example
    return {"required": required, "content": {content_type: media}}


def _responses(ok: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for status, what in ok.items():
        out[status] = {"description": what}
        if status not in ("202", "304"):
            out[status]["content"] = {FHIR_JSON: {"schema": {"type": "object"}}}
    error = {"content": {FHIR_JSON: {"schema": {"$ref": "#/components/schemas/OperationOutcome"}}}}
    for status, what in (("400", "Bad request"), ("401", "Authentication required"), ("403", "Forbidden"), ("404", "Not found"),
                         ("405", "Method not allowed"), ("406", "Not acceptable"), ("409", "Conflict"), ("410", "Gone"),
                         ("412", "Precondition failed"), ("413", "Body too large"), ("415", "Unsupported media type"),
                         ("422", "Unprocessable entity"), ("428", "Precondition required"), ("429", "Too many requests")):
        out.setdefault(status, {"description": what, **error})
    out["503"] = {"description": "Audit trail unavailable (fail-closed); retry later", **error}
    return out


# endpoint -> (summary, parameters, request body or None, success responses)
Spec = tuple[str, list[dict[str, Any]], dict[str, Any] | None, dict[str, str]]


def _describe(endpoint: str, method: str) -> Spec | None:
    history = [_param("_count", "query", {"type": "integer", "minimum": 1, "maximum": 1000}), _param("_since", "query", {"type": "string", "pattern": DATE_PATTERN}),
               _param("_page", "query", {"type": "string"})]
    everything = [_param("_since", "query", {"type": "string", "pattern": DATE_PATTERN}), _param("_type", "query", {"type": "string"}),
                  _param("_count", "query", {"type": "integer", "minimum": 1, "maximum": 1000}), _param("_page", "query", {"type": "string"})]
    export = [_param("Prefer", "header", {"type": "string", "enum": ["respond-async"]}, "Bulk export is asynchronous", required=True),
              _param("_outputFormat", "query", {"type": "string", "enum": ["application/fhir+ndjson", "application/ndjson", "ndjson"]}),
              _param("_type", "query", {"type": "string"}), _param("_since", "query", {"type": "string", "pattern": DATE_PATTERN})]
    table: dict[tuple[str, str], Spec] = {
        ("fhir.metadata", "GET"): ("CapabilityStatement", [], None, {"200": "CapabilityStatement"}),
        ("fhir.smart_configuration", "GET"): ("SMART configuration", [], None, {"200": "SMART discovery document"}),
        ("fhir.openapi", "GET"): ("This OpenAPI description", [], None, {"200": "OpenAPI 3 document"}),
        ("fhir.create", "POST"): ("create", [_param("If-None-Exist", "header", {"type": "string"}, "Conditional create: a search query"), PREFER_RETURN],
                                  _body("Resource", example=EXAMPLE_PATIENT), {"200": "Existing match", "201": "Created"}),
        ("fhir.transaction_or_batch", "POST"): ("transaction / batch", [PREFER_RETURN], _body("Bundle", example=EXAMPLE_TRANSACTION),
                                                {"200": "transaction-response or batch-response Bundle"}),
        ("fhir.conditional_update", "PUT"): ("conditional update (the query selects the resource)", [*COMMON_PARAMS, IF_MATCH, PREFER_RETURN],
                                             _body("Resource"), {"200": "Updated", "201": "Created"}),
        ("fhir.conditional_delete", "DELETE"): ("conditional delete", COMMON_PARAMS, None, {"200": "Deleted or nothing matched"}),
        ("fhir.search_type", "GET"): ("search-type", [*COMMON_PARAMS, *RESULT_PARAMS], None, {"200": "searchset Bundle"}),
        ("fhir.search_post", "POST"): ("search-type with POST", [], {"required": False, "content": {
            "application/x-www-form-urlencoded": {"schema": _form_schema([*COMMON_PARAMS, *RESULT_PARAMS])}}}, {"200": "searchset Bundle"}),
        ("fhir.read", "GET"): ("read", [_param("If-None-Match", "header", {"type": "string"})], None, {"200": "The resource", "304": "Not modified"}),
        ("fhir.vread", "GET"): ("vread", [], None, {"200": "The version"}),
        ("fhir.update", "PUT"): ("update (or create with a client id)", [IF_MATCH, PREFER_RETURN], _body("Resource", example=EXAMPLE_PATIENT),
                                 {"200": "Updated", "201": "Created"}),
        ("fhir.patch", "PATCH"): ("JSON Patch", [IF_MATCH, PREFER_RETURN], _body("JsonPatch", "application/json-patch+json",
                                  [{"op": "replace", "path": "/active", "value": True}]), {"200": "Patched"}),
        ("fhir.delete", "DELETE"): ("delete", [IF_MATCH], None, {"200": "Deleted"}),
        ("fhir.history_instance", "GET"): ("history of one resource", history, None, {"200": "history Bundle"}),
        ("fhir.history_type", "GET"): ("history of a type", history, None, {"200": "history Bundle"}),
        ("fhir.history_system", "GET"): ("history of the server", history, None, {"200": "history Bundle"}),
        ("fhir_audit.search", "GET"): ("AuditEvent search (the audit trail)", [
            _param("patient", "query", {"type": "string"}), _param("date", "query", {"type": "string", "pattern": DATE_PATTERN}),
            _param("action", "query", {"type": "string"}), _param("_page", "query", {"type": "string"}),
            _param("_count", "query", {"type": "integer", "minimum": 0, "maximum": 1000})], None, {"200": "searchset Bundle"}),
        ("fhir_audit.read", "GET"): ("AuditEvent read", [], None, {"200": "AuditEvent"}),
        ("fhir_bulk.export_system", "GET"): ("system $export kick-off", export, None, {"202": "Accepted"}),
        ("fhir_bulk.export_patients", "GET"): ("Patient $export kick-off", export, None, {"202": "Accepted"}),
        ("fhir_bulk.export_group", "GET"): ("Group $export kick-off", export, None, {"202": "Accepted"}),
        ("fhir_bulk.export_status", "GET"): ("$export status", [], None, {"200": "Manifest", "202": "In progress"}),
        ("fhir_bulk.export_cancel", "DELETE"): ("$export cancel", [], None, {"202": "Cancelled"}),
        ("fhir_bulk.export_file", "GET"): ("$export file (NDJSON)", [], None, {"200": "NDJSON"}),
        ("fhir_operations.patient_match", "POST"): ("Patient $match", [], _body("Parameters", example={
            "resourceType": "Parameters", "parameter": [{"name": "resource", "resource": EXAMPLE_PATIENT}, {"name": "count", "valueInteger": 5}]}),
            {"200": "searchset Bundle"}),
        ("fhir_operations.patient_merge", "POST"): ("Patient $merge", [], _body("Parameters", example={
            "resourceType": "Parameters", "parameter": [{"name": "source-patient", "valueReference": {"reference": "Patient/a"}},
                                                        {"name": "target-patient", "valueReference": {"reference": "Patient/b"}},
                                                        {"name": "preview", "valueBoolean": True}]}), {"200": "Parameters"}),
        ("fhir_operations.patient_from_qr", "POST"): ("Patient $from-cccd-qr", [], {"required": True, "content": {
            FHIR_JSON: {"schema": {"$ref": "#/components/schemas/Parameters"}},
            "text/plain": {"schema": {"type": "string"}, "example": "001234567890|123456789|Nguyễn Văn An|02031985|Nam|Hà Nội|01012021"}}},
            {"200": "Patient (not stored)"}),
        ("fhir_operations.patient_everything", "GET"): ("Patient $everything", everything, None, {"200": "searchset Bundle"}),
        ("fhir_operations.patient_everything", "POST"): ("Patient $everything", [], _body("Parameters", required=False), {"200": "searchset Bundle"}),
        ("fhir_operations.all_patients_everything", "GET"): ("$everything for all patients", everything, None, {"200": "searchset Bundle"}),
        ("fhir_operations.validate_type", "POST"): ("$validate", [_param("mode", "query", {"type": "string", "enum": ["create", "update", "delete"]})],
                                                    _body("Resource", required=False), {"200": "OperationOutcome"}),
        ("fhir_operations.validate_instance", "POST"): ("$validate", [_param("mode", "query", {"type": "string", "enum": ["create", "update", "delete"]})],
                                                        _body("Resource", required=False), {"200": "OperationOutcome"}),
    }
    return table.get((endpoint, method))


def _operation(app: Flask, rule: Any, method: str, path: str, search_type: str | None = None) -> dict[str, Any]:
    described = _describe(rule.endpoint, method)
    if described is None:
        body = _body("Resource", required=False) if method in ("POST", "PUT", "PATCH") else None
        described = (f"{method} {rule.rule}", [], body, {"200": "OK"})
    summary, params, body, ok = described
    path_params = [_path_param(name) for name in _RULE_ARG.findall(rule.rule) if not (search_type and name == "rtype")]
    params = [copy.deepcopy(p) for p in params]
    if search_type is not None:
        typed = _search_params(search_type)
        if method == "GET":
            params = [*params, *typed]
        elif body is not None:
            body = {"required": False, "content": {"application/x-www-form-urlencoded": {"schema": _form_schema([*COMMON_PARAMS, *RESULT_PARAMS, *typed])}}}
    suffix = f"-{search_type}" if search_type else ""
    op: dict[str, Any] = {
        "operationId": f"{rule.endpoint.replace('.', '-')}-{method.lower()}{suffix}",
        "summary": summary + (f" ({search_type})" if search_type else ""),
        "tags": [rule.endpoint.split(".")[0]],
        "parameters": [*path_params, *params],
        "responses": _responses(ok),
    }
    if body is not None:
        op["requestBody"] = copy.deepcopy(body)
    if app.config.get("EHR_API_AUTH") == "required" and rule.endpoint not in ("fhir.metadata", "fhir.smart_configuration"):
        op["security"] = [{"smartBackendServices": []}]
    return op


def build(app: Flask) -> dict[str, Any]:
    """The document for this app, without `servers`."""
    paths: dict[str, dict[str, Any]] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not (rule.rule == "/fhir" or rule.rule.startswith("/fhir/")):
            continue
        path = _RULE_ARG.sub(lambda m: "{" + m.group(1) + "}", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(app, rule, method, path)
            # Searches on the types with declared parameters: a path per type, with its parameters.
            if rule.endpoint in ("fhir.search_type", "fhir.search_post"):
                for rtype in registry().types():
                    typed = path.replace("{rtype}", rtype)
                    if typed in paths and method.lower() in paths[typed]:
                        continue  # a route of its own (for example /fhir/AuditEvent) wins
                    paths.setdefault(typed, {})[method.lower()] = _operation(app, rule, method, typed, rtype)
    doc: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {
            "title": "EHR VN FHIR R4 API",
            "version": str(app.config.get("EHR_VERSION", "0.1.0")),
            "description": "Generated from the server's routes and fhir/search-parameters.json. Every error is a FHIR OperationOutcome. "
                           "Search parameters marked blind are matched on keyed HMAC tokens (no :contains, no _sort). "
                           "Authentication: " + ("SMART Backend Services bearer tokens from /auth/token." if app.config.get("EHR_API_AUTH") == "required"
                                                 else "open (development): no token needed."),
        },
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": {**SCHEMAS, "ResourceType": {"type": "string", "enum": sorted(SERVED_TYPES)}}},
    }
    if app.config.get("EHR_API_AUTH") == "required":
        doc["components"]["securitySchemes"] = {"smartBackendServices": {"type": "http", "scheme": "bearer", "description": "SMART Backend Services access token"}}
    return doc


def document(app: Flask, server_url: str) -> dict[str, Any]:
    cached = app.extensions.get(_CACHE_KEY)
    if cached is None:
        cached = app.extensions[_CACHE_KEY] = build(app)
    return {**cached, "servers": [{"url": server_url}]}


@bp.get("/openapi.json")
def openapi() -> Response:
    root = http.base_url().rsplit("/fhir", 1)[0]
    response = http.respond(jsonio.dumps(document(current_app, root)), 200, mimetype="application/json")
    response.headers["Cache-Control"] = "max-age=3600"
    return response
