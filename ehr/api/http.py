"""HTTP details of the FHIR API: media types, ETags, Prefer, conditional reads, base URL."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any

from flask import Response, current_app, request
from werkzeug.http import parse_date

from ehr.fhir import jsonio
from ehr.fhir.outcomes import FhirError, Issue, bad_request, not_supported, operation_outcome

FHIR_JSON = "application/fhir+json"
_JSON_TYPES = {"application/fhir+json", "application/json", "application/json+fhir", "text/json"}
_FORMAT_ALIASES = {"json": FHIR_JSON, "application/fhir+json": FHIR_JSON, "application/json+fhir": FHIR_JSON, "application/json": "application/json"}
_ETAG = re.compile(r'^\s*(?:W/)?"([0-9]{1,9})"\s*$')


def response_mimetype() -> str:
    """The media type to answer with, from `_format` or Accept; 406 when only XML/RDF is wanted."""
    fmt = request.args.get("_format")
    if fmt is not None:
        chosen = _FORMAT_ALIASES.get(fmt.strip().lower().split(";")[0])
        if chosen is None:
            raise FhirError.one(406, "not-supported", "only JSON is supported (_format=json)", "_format")
        return chosen
    if not request.headers.get("Accept"):
        return FHIR_JSON
    best = request.accept_mimetypes.best_match([FHIR_JSON, "application/json", "application/json+fhir", "text/json"])
    if best is None:
        raise FhirError.one(406, "not-supported", "only application/fhir+json is supported")
    return "application/json" if best == "application/json" else FHIR_JSON


def json_body(patch: bool = False) -> Any:
    """The request body parsed strictly; 415 for another media type or an encoded body."""
    encoding = (request.headers.get("Content-Encoding") or "identity").strip().lower()
    if encoding != "identity":
        raise not_supported(415, "compressed request bodies are not accepted")
    mimetype = request.mimetype
    charset = request.mimetype_params.get("charset", "utf-8").lower()
    allowed = {"application/json-patch+json"} if patch else _JSON_TYPES
    if mimetype not in allowed:
        wanted = "application/json-patch+json" if patch else FHIR_JSON
        raise not_supported(415, f"the request body must be {wanted}")
    if charset not in ("utf-8", "utf8"):
        raise not_supported(415, "the request body must be UTF-8")
    data = request.get_data(cache=False)
    return jsonio.parse_json(data) if patch else jsonio.parse_resource(data)


def etag(version_id: int) -> str:
    return f'W/"{version_id}"'


def parse_if_match() -> int | None:
    value = request.headers.get("If-Match")
    if value is None:
        return None
    match = _ETAG.match(value)
    if not match:
        raise bad_request('If-Match must be a version ETag such as W/"3"', "If-Match")
    return int(match.group(1))


def http_date(us: int) -> str:
    return format_datetime(datetime.fromtimestamp(us // 1_000_000, tz=timezone.utc), usegmt=True)


def not_modified(version_id: int, last_updated_us: int) -> bool:
    """Conditional read: If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2)."""
    inm = request.headers.get("If-None-Match")
    if inm is not None:
        tags = [t.strip() for t in inm.split(",")]
        return "*" in tags or any((m := _ETAG.match(t)) and int(m.group(1)) == version_id for t in tags)
    ims = request.headers.get("If-Modified-Since")
    if ims is not None:
        since = parse_date(ims)
        if since is not None:
            return last_updated_us // 1_000_000 <= int(since.timestamp())
    return False


def prefer_return() -> str:
    """'representation' (default), 'minimal' or 'OperationOutcome' from the Prefer header."""
    for part in (request.headers.get("Prefer") or "").split(","):
        name, _, value = part.strip().partition("=")
        if name.strip().lower() == "return":
            value = value.strip().strip('"')
            if value in ("minimal", "representation", "OperationOutcome"):
                return value
    return "representation"


def base_url() -> str:
    configured = current_app.config.get("EHR_BASE_URL")
    return configured.rstrip("/") if configured else request.host_url.rstrip("/") + "/fhir"


def token_url() -> str:
    """The OAuth token endpoint's URL: what a client assertion must name as its audience."""
    return base_url().rsplit("/fhir", 1)[0] + "/auth/token"


def respond(body: bytes | None, status: int = 200, headers: dict[str, str] | None = None, mimetype: str | None = None) -> Response:
    response = Response(body or b"", status=status, headers=headers or {})
    if body is not None:
        response.headers["Content-Type"] = f"{mimetype or response_mimetype()}; charset=utf-8"
    response.headers["Cache-Control"] = "no-store"
    return response


def respond_json(doc: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return respond(jsonio.dumps(doc), status, headers)


def outcome_response(issues: list[Issue], status: int, headers: dict[str, str] | None = None) -> Response:
    try:
        mimetype = response_mimetype()
    except FhirError:
        mimetype = FHIR_JSON
    return respond(jsonio.dumps(operation_outcome(issues)), status, headers, mimetype)


def written_body(body: bytes, message: str, warnings: list[Issue] | None = None) -> bytes | None:
    """The body of a write response as the client's Prefer header asks.

    Warnings (for example a CCCD whose birth-year digits disagree with the birth date) are the
    issues of the OperationOutcome returned with `Prefer: return=OperationOutcome`; with the
    default representation they travel in the `X-FHIR-OperationOutcome` header (see
    `warning_headers`), so the stored resource and its warnings arrive together.
    """
    choice = prefer_return()
    if choice == "minimal":
        return None
    if choice == "OperationOutcome":
        return jsonio.dumps(operation_outcome([Issue("informational", message, severity="information"), *(warnings or [])]))
    return body


def warning_headers(warnings: list[Issue]) -> dict[str, str]:
    if not warnings:
        return {}
    # ASCII JSON: HTTP header values are Latin-1; messages are rule descriptions, never values.
    return {"X-FHIR-OperationOutcome": json.dumps(operation_outcome(warnings), ensure_ascii=True, separators=(",", ":"))}
