"""FHIR R4 RESTful API at /fhir: parse the request, call one service, format the response."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from ehr.api import access, http
from ehr.api.capability import capability_statement
from ehr.fhir import bundles, jsonio
from ehr.fhir import query as query_syntax
from ehr.fhir.outcomes import bad_request, information, not_supported, operation_outcome
from ehr.services import bundles as bundle_svc
from ehr.services import clients
from ehr.services import resources as svc
from ehr.services.common import format_instant, now_instant
from ehr.services import search as search_svc
from ehr.services.context import AccessContext
from ehr.store.repository import StoredVersion
from ehr.store.runtime import Store

bp = Blueprint("fhir", __name__, url_prefix="/fhir")
bp.before_request(access.require_context)


def _store() -> Store:
    return current_app.extensions["ehr.store"]  # type: ignore[no-any-return]


def _ctx() -> AccessContext:
    return access.request_context()


def _location(version: StoredVersion) -> str:
    return f"{http.base_url()}/{version.resource_type}/{version.logical_id}/_history/{version.version_id}"


def _version_headers(version: StoredVersion) -> dict[str, str]:
    return {"ETag": http.etag(version.version_id), "Last-Modified": http.http_date(version.last_updated)}


@bp.before_request
def _negotiate() -> None:
    http.response_mimetype()  # 406 early, before any work, when the client wants only XML


@bp.get("/metadata")
def metadata() -> Response:
    return http.respond_json(capability_statement(current_app, http.base_url(), http.token_url()))


@bp.get("/.well-known/smart-configuration")
def smart_configuration() -> Response:
    """SMART App Launch 2.x discovery, for Backend Services (client credentials) only."""
    doc = {
        "issuer": http.base_url(),
        "token_endpoint": http.token_url(),
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": list(clients.ALGORITHMS),
        "grant_types_supported": ["client_credentials"],
        "scopes_supported": ["system/*.rs", "system/*.cruds", "system/Patient.rs", "system/Observation.rs", "system/Consent.rs"],
        "response_types_supported": [],
        "capabilities": ["client-confidential-asymmetric", "permission-v2", "permission-v1"],
        "code_challenge_methods_supported": [],
    }
    response = http.respond(jsonio.dumps(doc), 200, mimetype="application/json")
    response.headers["Cache-Control"] = "max-age=3600"
    return response


@bp.post("/<rtype>")
def create(rtype: str) -> Response:
    svc.check_type(rtype)
    doc = http.json_body()
    if doc.get("resourceType") != rtype:
        raise bad_request("resourceType does not match the type in the URL", "resourceType")
    result = svc.create(_store(), _ctx(), doc, request.headers.get("If-None-Exist"))
    headers = {**_version_headers(result.version), "Location": _location(result.version), **http.warning_headers(result.warnings)}
    message = "created" if result.created else "an existing resource matched the condition; nothing was created"
    assert result.version.body is not None
    return http.respond(http.written_body(result.version.body, message, result.warnings), result.status, headers)


@bp.post("")
def transaction_or_batch() -> Response:
    """POST [base] with a transaction or batch Bundle."""
    bundle = http.json_body()
    kind = bundle.get("type")
    representation = http.prefer_return() != "minimal"
    if kind == "transaction":
        results = bundle_svc.transaction(_store(), _ctx(), bundle, representation)
    elif kind == "batch":
        results = bundle_svc.batch(_store(), _ctx(), bundle, representation)
    else:
        raise bad_request("POST [base] takes a Bundle of type transaction or batch", "Bundle.type")
    base = http.base_url()
    entries: list[tuple[dict[str, object], bytes | None]] = []
    for result in results:
        entry = result.to_fhir()
        if result.location:
            entry["response"]["location"] = f"{base}/{result.location}"  # type: ignore[index]
            entry["fullUrl"] = f"{base}/{result.location.split('/_history/')[0]}"
        entries.append((entry, result.resource))
    reply = bundles.new_bundle(f"{kind}-response", [], None, now_instant())
    return http.respond(bundles.encode(reply, entries))


def _type_for_condition(rtype: str) -> None:
    if rtype == "metadata":  # a fixed endpoint, not a type: answer like any other method
        raise not_supported(405, f"{request.method} is not supported on this endpoint")
    svc.check_type(rtype)


@bp.put("/<rtype>")
def conditional_update(rtype: str) -> Response:
    _type_for_condition(rtype)
    query = request.query_string.decode("utf-8", "replace")
    if not query:
        raise bad_request("PUT on a type needs a search condition (PUT [type]?[search]) or an id (PUT [type]/[id])", "url")
    doc = http.json_body()
    result = svc.conditional_update(_store(), _ctx(), rtype, query, doc, http.parse_if_match())
    headers = {**_version_headers(result.version), **http.warning_headers(result.warnings)}
    if result.created:
        headers["Location"] = _location(result.version)
    assert result.version.body is not None
    return http.respond(http.written_body(result.version.body, "updated", result.warnings), result.status, headers)


@bp.delete("/<rtype>")
def conditional_delete(rtype: str) -> Response:
    _type_for_condition(rtype)
    query = request.query_string.decode("utf-8", "replace")
    if not query:
        raise bad_request("DELETE on a type needs a search condition (DELETE [type]?[search])", "url")
    result = svc.conditional_delete(_store(), _ctx(), rtype, query)
    headers = {"ETag": http.etag(result.version_id)} if result.version_id else {}
    message = "deleted" if result.version_id else "no resource matched the condition; nothing was deleted"
    return http.respond(jsonio.dumps(information(message)), 200, headers)


@bp.get("/<rtype>")
def search_type(rtype: str) -> Response:
    return _search(rtype, list(request.args.items(multi=True)))


@bp.post("/<rtype>/_search")
def search_post(rtype: str) -> Response:
    if request.mimetype != "application/x-www-form-urlencoded":
        raise not_supported(415, "POST _search takes an application/x-www-form-urlencoded body")
    params = list(request.args.items(multi=True)) + list(request.form.items(multi=True))
    return _search(rtype, params)


def _search(rtype: str, params: list[tuple[str, str]]) -> Response:
    strict = "handling=strict" in (request.headers.get("Prefer") or "").replace(" ", "")
    page = search_svc.search(_store(), _ctx(), rtype, params, strict=strict)
    base = http.base_url()
    # Links carry only an encrypted token: a searched national ID or name never appears in a URL.
    links = [("self", f"{base}/{rtype}?_page={page.self_token}")]
    if page.next_token:
        links.append(("next", f"{base}/{rtype}?_page={page.next_token}"))
    if page.previous_token:
        links.append(("previous", f"{base}/{rtype}?_page={page.previous_token}"))
    entries: list[tuple[dict[str, object], bytes | None]] = [
        ({"fullUrl": f"{base}/{v.resource_type}/{v.logical_id}", "search": {"mode": mode}}, v.body) for v, mode in page.entries
    ]
    if page.issues:
        entries.append(({"search": {"mode": "outcome"}}, jsonio.dumps(operation_outcome(page.issues))))
    bundle = bundles.new_bundle("searchset", links, page.total, now_instant())
    return http.respond(bundles.encode(bundle, entries))


@bp.get("/<rtype>/<rid>")
def read(rtype: str, rid: str) -> Response:
    version = svc.read(_store(), _ctx(), rtype, rid)
    headers = _version_headers(version)
    if http.not_modified(version.version_id, version.last_updated):
        return http.respond(None, 304, headers)
    return http.respond(version.body, 200, headers)


@bp.get("/<rtype>/<rid>/_history/<vid>")
def vread(rtype: str, rid: str, vid: str) -> Response:
    version = svc.vread(_store(), _ctx(), rtype, rid, vid)
    return http.respond(version.body, 200, _version_headers(version))


@bp.put("/<rtype>/<rid>")
def update(rtype: str, rid: str) -> Response:
    svc.check_type(rtype)
    doc = http.json_body()
    result = svc.update(_store(), _ctx(), rtype, rid, doc, http.parse_if_match())
    headers = {**_version_headers(result.version), **http.warning_headers(result.warnings)}
    if result.created:
        headers["Location"] = _location(result.version)
    assert result.version.body is not None
    return http.respond(http.written_body(result.version.body, "updated", result.warnings), result.status, headers)


@bp.patch("/<rtype>/<rid>")
def patch(rtype: str, rid: str) -> Response:
    svc.check_type(rtype)
    operations = http.json_body(patch=True)
    result = svc.patch(_store(), _ctx(), rtype, rid, operations, http.parse_if_match())
    assert result.version.body is not None
    headers = {**_version_headers(result.version), **http.warning_headers(result.warnings)}
    return http.respond(http.written_body(result.version.body, "patched", result.warnings), 200, headers)


@bp.delete("/<rtype>/<rid>")
def delete(rtype: str, rid: str) -> Response:
    result = svc.delete(_store(), _ctx(), rtype, rid, http.parse_if_match())
    headers = {"ETag": http.etag(result.version_id)} if result.version_id else {}
    message = "deleted" if result.version_id else "the resource was already deleted"
    return http.respond(jsonio.dumps(information(message)), 200, headers)


@bp.get("/<rtype>/<rid>/_history")
def history_instance(rtype: str, rid: str) -> Response:
    return _history(rtype, rid)


@bp.get("/<rtype>/_history")
def history_type(rtype: str) -> Response:
    return _history(rtype, None)


@bp.get("/_history")
def history_system() -> Response:
    return _history(None, None)


def _history(rtype: str | None, rid: str | None) -> Response:
    count = query_syntax.parse([("_count", request.args.get("_count", str(query_syntax.DEFAULT_COUNT)))]).count
    since = request.args.get("_since")
    page = svc.history(_store(), _ctx(), rtype, rid, since, max(count, 1), request.args.get("_page"))
    base = http.base_url()
    path = "/".join(p for p in (base, rtype, rid, "_history") if p)
    links = [("self", path)]
    if page.next_token:
        links.append(("next", f"{path}?_page={page.next_token}&_count={count}" + (f"&_since={since}" if since else "")))
    entries: list[tuple[dict[str, object], bytes | None]] = []
    for v in page.entries:
        url = f"{v.resource_type}/{v.logical_id}"
        entry: dict[str, object] = {
            "fullUrl": f"{base}/{url}",
            "request": {"method": "POST" if v.method == "POST" else "DELETE" if v.deleted else "PUT", "url": url if v.method != "POST" else v.resource_type},
            "response": {
                "status": "201 Created" if v.method == "POST" else "204 No Content" if v.deleted else "200 OK",
                "etag": http.etag(v.version_id),
                "lastModified": format_instant(v.last_updated),
            },
        }
        entries.append((entry, v.body))
    bundle = bundles.new_bundle("history", links, None, now_instant())
    return http.respond(bundles.encode(bundle, entries))


from ehr.api import openapi as _openapi  # noqa: E402,F401  (registers GET /fhir/openapi.json on bp)
