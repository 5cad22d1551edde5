"""Transaction and batch bundles (R4 http.html#transaction).

Transaction: all-or-nothing in one database transaction. Order of the specification: DELETE,
POST, PUT/PATCH, then GET (read after the writes commit). `urn:uuid:` and other fullUrl references
are rewritten everywhere they occur (nested elements, extensions, contained resources, narrative
links); conditional references (`Patient?identifier=...`) must match exactly one resource;
conditional create/update/delete work inside the bundle. Any failure rolls everything back and
answers with the failing entry's status and an OperationOutcome naming the entry index.

Batch: entries are independent, each in its own transaction with its own response (errors as an
OperationOutcome in `response.outcome`); references between entries are not rewritten.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode

from ehr.fhir import bundles as bundle_bytes
from ehr.fhir import jsonio
from ehr.fhir import references as refs
from ehr.fhir.outcomes import FhirError, Issue, bad_request, not_found, operation_outcome, precondition_failed
from ehr.fhir.resources import is_valid_id
from ehr.services import costs, matching, policy, resources, search
from ehr.services.common import check_type, format_instant
from ehr.services.context import AccessContext
from ehr.services.resources import Deferred, Deleted, Prepared, Written
from ehr.store.repository import StoredVersion
from ehr.store.runtime import Store

ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}
JSON_PATCH = "application/json-patch+json"


@dataclass
class EntryResponse:
    status: int
    location: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    resource: bytes | None = None
    outcome: dict[str, Any] | None = None

    def to_fhir(self) -> dict[str, Any]:
        response: dict[str, Any] = {"status": f"{self.status} {HTTPStatus(self.status).phrase}"}
        if self.location:
            response["location"] = self.location
        if self.etag:
            response["etag"] = self.etag
        if self.last_modified:
            response["lastModified"] = self.last_modified
        if self.outcome:
            response["outcome"] = self.outcome
        return {"response": response}


@dataclass
class Entry:
    index: int
    method: str
    resource_type: str
    logical_id: str | None = None
    version: str | None = None
    query: list[tuple[str, str]] | None = None
    full_url: str | None = None
    resource: dict[str, Any] | None = None
    if_match: int | None = None
    if_none_exist: list[tuple[str, str]] | None = None
    body_id: str | None = None  # the id the client sent (before the server sets its own)
    new_id: str | None = None
    prepared: Prepared | None = None
    patch_ops: Any = None
    result: EntryResponse | None = field(default=None)


def _at(index: int, exc: FhirError) -> FhirError:
    """Re-address a resource's issues to its bundle entry."""
    issues = []
    for issue in exc.issues:
        expressions = tuple(
            f"Bundle.entry[{index}].resource" + (e[e.index(".") :] if "." in e and e[0].isupper() else "")
            if e and e[0].isupper() else f"Bundle.entry[{index}].request" for e in issue.expression
        )
        issues.append(Issue(issue.code, f"entry {index}: {issue.diagnostics}", issue.severity, expressions or (f"Bundle.entry[{index}]",)))
    return FhirError(exc.status, issues, {})


def _if_match(value: Any) -> int | None:
    if value is None:
        return None
    text = str(value).strip()
    digits = text.removeprefix("W/").strip('"')
    if not digits.isdigit():
        raise bad_request('ifMatch must be a version ETag such as W/"3"')
    return int(digits)


def _parse(index: int, raw: Any, base_urls: tuple[str, ...]) -> Entry:
    if not isinstance(raw, dict):
        raise bad_request(f"entry {index} is not an object", f"Bundle.entry[{index}]")
    request = raw.get("request")
    if not isinstance(request, dict) or not isinstance(request.get("method"), str) or not isinstance(request.get("url"), str):
        raise bad_request(f"entry {index} needs request.method and request.url", f"Bundle.entry[{index}].request")
    method = request["method"]  # a code: case-sensitive, as the R4 value set spells it
    if method not in ORDER:
        raise bad_request(f"entry {index}: method is not supported", f"Bundle.entry[{index}].request.method")
    url = request["url"]
    for base in base_urls:
        if base and url.startswith(base.rstrip("/") + "/"):
            url = url[len(base.rstrip("/")) + 1 :]
    path, _, query_text = url.partition("?")
    parts = [unquote(p) for p in path.strip("/").split("/") if p]
    if not parts:
        raise bad_request(f"entry {index}: request.url names no resource type", f"Bundle.entry[{index}].request.url")
    entry = Entry(index, method, parts[0])
    if len(parts) >= 2:
        entry.logical_id = parts[1]
    if len(parts) == 4 and parts[2] == "_history" and method in ("GET", "HEAD"):
        entry.version = parts[3]
    elif len(parts) not in (1, 2):
        raise bad_request(f"entry {index}: request.url is not a supported form", f"Bundle.entry[{index}].request.url")
    if query_text or (method in ("PUT", "DELETE") and entry.logical_id is None):
        try:
            entry.query = parse_qsl(query_text, keep_blank_values=True, strict_parsing=bool(query_text))
        except ValueError:
            raise bad_request(f"entry {index}: the query of request.url is not valid", f"Bundle.entry[{index}].request.url") from None
    if raw.get("fullUrl") is not None and not isinstance(raw["fullUrl"], str):
        raise bad_request(f"entry {index}: fullUrl must be a string (a URI)", f"Bundle.entry[{index}].fullUrl")
    entry.full_url = raw.get("fullUrl")
    entry.resource = raw.get("resource") if isinstance(raw.get("resource"), dict) else None
    if entry.resource is not None and isinstance(entry.resource.get("id"), str):
        entry.body_id = entry.resource["id"]
    entry.if_match = _if_match(request.get("ifMatch"))
    if isinstance(request.get("ifNoneExist"), str):
        entry.if_none_exist = matching.parse_conditions(request["ifNoneExist"], f"Bundle.entry[{index}].request.ifNoneExist")
    return entry


def _check(ctx: AccessContext, e: Entry) -> None:
    check_type(e.resource_type)
    if e.method in ("POST", "PUT", "PATCH"):
        if e.method != "PATCH" and (e.resource is None or e.resource.get("resourceType") != e.resource_type):
            raise bad_request("the entry's resource must be of the type in request.url", "resourceType")
    if e.logical_id is not None and not is_valid_id(e.logical_id):
        raise bad_request("the id in request.url is not a valid FHIR id", "id")
    interaction = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete", "GET": "read", "HEAD": "read"}[e.method]
    if e.method in ("POST", "PUT", "PATCH", "DELETE"):
        resources.check_writable(ctx, interaction, e.resource_type)
    if e.method == "POST" and e.logical_id is not None:
        raise bad_request("POST takes a resource type only in request.url", "url")
    if e.method == "PUT" and e.logical_id is not None and e.resource is not None:
        resources.check_update_body(e.resource, e.logical_id)
    if e.method == "PATCH":
        e.patch_ops = _patch_operations(e)


def _patch_operations(e: Entry) -> Any:
    binary = e.resource
    if not binary or binary.get("resourceType") != "Binary" or binary.get("contentType") != JSON_PATCH or e.logical_id is None:
        raise bad_request(f"a PATCH entry carries a Binary of {JSON_PATCH} and a Type/id url", "resource")
    try:
        return jsonio.parse_json(base64.b64decode(str(binary.get("data", "")), validate=True))
    except (binascii.Error, ValueError):
        raise bad_request("the Binary data of a PATCH entry is not base64 JSON", "resource.data") from None


def _prepare(store: Store, e: Entry) -> None:
    if e.method == "POST":
        e.new_id = str(uuid.uuid4())
    elif e.method == "PUT":
        e.new_id = e.logical_id or e.body_id or str(uuid.uuid4())
    if e.method in ("POST", "PUT") and e.resource is not None:
        assert e.new_id is not None
        e.prepared = resources.prepare_write(store, e.resource, e.resource_type, e.new_id)


def _check_read(store: Store, ctx: AccessContext, e: Entry) -> None:
    """A search entry with a bad query fails the whole transaction before anything is written; a
    read that finds nothing answers 404 in its own entry (it changes nothing)."""
    if e.method in ("GET", "HEAD") and e.logical_id is None:
        search.check(store, ctx, e.resource_type, e.query or [])


def _rewrite_narrative(doc: dict[str, Any], mapping: dict[str, str]) -> None:
    text = doc.get("text")
    if isinstance(text, dict) and isinstance(text.get("div"), str):
        div = text["div"]
        for old, new in mapping.items():
            if old in div:
                div = div.replace(f'"{old}"', f'"{new}"')
        text["div"] = div


def _conditional_references(uow: Any, store: Store, entries: list[Entry], mapping: dict[str, str]) -> None:
    """Resolve `Type?query` references: exactly one match, or the transaction fails."""
    for e in entries:
        if e.prepared is None:
            continue
        for path, ref in e.prepared.walked.references:
            value = ref.get("reference")
            if not isinstance(value, str) or value in mapping:
                continue
            parsed = refs.parse(value, store.base_urls)
            if parsed.kind != "conditional":
                continue
            rtype, _, query_text = value.partition("?")
            try:
                check_type(rtype)
                pairs = matching.parse_conditions(query_text, path)
                found = matching.find(uow, store, rtype, pairs, 2, where=path)
            except FhirError as exc:
                raise _at(e.index, exc) from None
            if len(found) != 1:
                error = precondition_failed if found else not_found
                raise _at(e.index, error(f"the conditional reference matches {'several resources' if found else 'no resource'}"))
            mapping[value] = f"{rtype}/{found[0]}"


def transaction(store: Store, ctx: AccessContext, bundle: dict[str, Any], representation: bool = True) -> list[EntryResponse]:
    entries = _entries(store, bundle, "transaction")
    urls: dict[str, int] = {}
    for e in entries:
        if e.full_url:
            if e.full_url in urls:
                raise bad_request(f"entry {e.index}: duplicate fullUrl (also entry {urls[e.full_url]})", f"Bundle.entry[{e.index}].fullUrl")
            urls[e.full_url] = e.index
    for e in entries:
        try:
            _check(ctx, e)
            _prepare(store, e)
            _check_read(store, ctx, e)
        except FhirError as exc:
            raise _at(e.index, exc) from None
    mapping: dict[str, str] = {}
    with store.writing(policy.gate(ctx)) as uow:
        deferred = Deferred()
        # 1. Conditional entries first: they decide which ids the fullUrls stand for.
        for e in entries:
            try:
                if e.method == "POST" and e.if_none_exist:
                    found = resources.find_conditional(uow, store, e.resource_type, e.if_none_exist, "ifNoneExist")
                    if len(found) > 1:
                        raise precondition_failed("ifNoneExist matches more than one resource")
                    if found:
                        e.new_id, e.prepared = found[0], None
                        e.result = _existing(uow, store, e.resource_type, found[0])
                elif e.method == "PUT" and e.query is not None:
                    found = resources.find_conditional(uow, store, e.resource_type, e.query, "url")
                    if len(found) > 1:
                        raise precondition_failed("the conditional update matches more than one resource")
                    if found:
                        if e.body_id is not None and e.body_id != found[0]:
                            raise bad_request("the id in the body does not match the resource the condition found", "id")
                        e.new_id = found[0]
            except FhirError as exc:
                raise _at(e.index, exc) from None
            if e.full_url and e.method in ("POST", "PUT") and e.new_id:
                mapping[e.full_url] = f"{e.resource_type}/{e.new_id}"
        # 2. Conditional references, then every reference and narrative link, rewritten.
        _conditional_references(uow, store, entries, mapping)
        for e in entries:
            if e.prepared is not None:
                if e.new_id:
                    e.prepared.doc["id"] = e.new_id
                refs.rewrite(e.prepared.doc, mapping)
                _rewrite_narrative(e.prepared.doc, mapping)
        # 3. The writes, in the order of the specification.
        for e in sorted(entries, key=lambda x: (ORDER[x.method], x.index)):
            if e.result is not None or e.method in ("GET", "HEAD"):
                continue
            try:
                e.result = _write(uow, store, e, deferred)
            except FhirError as exc:
                raise _at(e.index, exc) from None
        resources.flush_writes(uow)
        try:
            resources.check_references(uow, deferred.references)
            resources.check_unreferenced(uow, deferred.deleted)
        except FhirError as exc:
            raise _failed_reference(exc, entries) from None
    answer = _Answer()
    for e in entries:
        if e.method in ("GET", "HEAD"):
            e.result = answer.add(_get(store, ctx, e))
        elif not representation and e.result is not None:
            e.result.resource = None
    return [e.result or EntryResponse(500) for e in entries]


def _failed_reference(exc: FhirError, entries: list[Entry]) -> FhirError:
    """Name the entry whose reference failed: issues carry 'Type.path' of that entry's resource."""
    issue = exc.issues[0]
    for e in entries:
        if e.prepared is not None and any(path in issue.expression for path, _ in e.prepared.walked.references):
            return _at(e.index, exc)
    return exc


def _raw_entries(bundle: dict[str, Any], kind: str) -> list[Any]:
    if bundle.get("resourceType") != "Bundle" or bundle.get("type") != kind:
        raise bad_request(f"expected a Bundle of type {kind}", "Bundle.type")
    raw = bundle.get("entry")
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise bad_request("Bundle.entry must be an array", "Bundle.entry")
    bounds = costs.current()
    if len(raw) > bounds.bundle_entries:
        raise bad_request(f"a {kind} takes at most {bounds.bundle_entries} entries: split it", "Bundle.entry", code="too-costly")
    reads = sum(1 for item in raw if isinstance(item, dict) and isinstance(item.get("request"), dict)
                and item["request"].get("method") in ("GET", "HEAD"))
    if reads > bounds.bundle_reads:
        # Each read entry can be a whole search page with includes: 200 of them took a minute.
        raise bad_request(f"a {kind} takes at most {bounds.bundle_reads} read (GET) entries", "Bundle.entry", code="too-costly")
    return raw


class _Answer:
    """Bytes of resources the read entries of a bundle's answer hold so far: past the bound the
    answer is refused, whole (never a truncated body)."""

    def __init__(self) -> None:
        self.size = 0

    def add(self, response: EntryResponse) -> EntryResponse:
        self.size += len(response.resource or b"")
        limit = costs.current().response_bytes
        if self.size > limit:
            raise search.too_large(limit)
        return response


def _entries(store: Store, bundle: dict[str, Any], kind: str) -> list[Entry]:
    return [_parse(i, item, store.base_urls) for i, item in enumerate(_raw_entries(bundle, kind))]


def _location(version: StoredVersion) -> str:
    return f"{version.resource_type}/{version.logical_id}/_history/{version.version_id}"


def _from_written(written: Written) -> EntryResponse:
    v = written.version
    outcome = operation_outcome(written.warnings) if written.warnings else None
    return EntryResponse(written.status, _location(v), f'W/"{v.version_id}"', format_instant(v.last_updated), v.body, outcome)


def _existing(uow: Any, store: Store, resource_type: str, logical_id: str) -> EntryResponse:
    return _from_written(Written(200, resources.read_live(uow, store, resource_type, logical_id)))


def _from_deleted(deleted: Deleted) -> EntryResponse:
    etag = f'W/"{deleted.version_id}"' if deleted.version_id else None
    return EntryResponse(200 if deleted.version_id else 204, etag=etag)


def _write(uow: Any, store: Store, e: Entry, deferred: Deferred) -> EntryResponse:
    if e.method == "POST":
        assert e.prepared is not None and e.new_id
        return _from_written(resources.create_in(uow, store, e.prepared, e.resource_type, e.new_id, None, deferred))
    if e.method == "PUT":
        assert e.prepared is not None and e.new_id
        return _from_written(resources.update_in(uow, store, e.prepared, e.resource_type, e.new_id, e.if_match, deferred))
    if e.method == "PATCH":
        assert e.logical_id
        return _from_written(resources.patch_in(uow, store, e.resource_type, e.logical_id, e.patch_ops, e.if_match, deferred))
    if e.logical_id:
        return _from_deleted(resources.delete_in(uow, store, e.resource_type, e.logical_id, e.if_match, deferred, missing_ok=True))
    assert e.query is not None
    return _from_deleted(resources.conditional_delete_in(uow, store, e.resource_type, e.query, deferred))


def _get(store: Store, ctx: AccessContext, e: Entry) -> EntryResponse:
    try:
        if e.logical_id and e.version:
            v = resources.vread(store, ctx, e.resource_type, e.logical_id, e.version)
        elif e.logical_id:
            v = resources.read(store, ctx, e.resource_type, e.logical_id)
        else:
            page = search.search(store, ctx, e.resource_type, e.query or [])
            entries: list[tuple[dict[str, object], bytes | None]] = [
                ({"fullUrl": f"{x.resource_type}/{x.logical_id}", "search": {"mode": mode}}, x.body) for x, mode in page.entries
            ]
            body = bundle_bytes.encode(bundle_bytes.new_bundle("searchset", [], page.total), entries)
            return EntryResponse(200, resource=body)
        return EntryResponse(200, etag=f'W/"{v.version_id}"', last_modified=format_instant(v.last_updated), resource=v.body)
    except FhirError as exc:
        return EntryResponse(exc.status, outcome=operation_outcome(exc.issues))


def batch(store: Store, ctx: AccessContext, bundle: dict[str, Any], representation: bool = True) -> list[EntryResponse]:
    """Each entry on its own: one failure does not stop the others."""
    out: list[EntryResponse] = []
    answer = _Answer()
    for index, raw in enumerate(_raw_entries(bundle, "batch")):
        read = False
        try:
            e = _parse(index, raw, store.base_urls)
            _check(ctx, e)
            response = _single(store, ctx, e)
            read = e.method in ("GET", "HEAD")
            if not representation:
                response.resource = None
        except FhirError as exc:
            response = EntryResponse(exc.status, outcome=operation_outcome(_at(index, exc).issues))
        if read:
            answer.add(response)  # reads only: a committed write's answer is never thrown away
        out.append(response)
    return out


def _single(store: Store, ctx: AccessContext, e: Entry) -> EntryResponse:
    if e.method == "POST":
        assert e.resource is not None
        condition = "&".join(f"{k}={v}" for k, v in e.if_none_exist) if e.if_none_exist else None
        return _from_written(resources.create(store, ctx, e.resource, condition))
    if e.method == "PUT":
        assert e.resource is not None
        if e.query is not None:
            return _from_written(resources.conditional_update(store, ctx, e.resource_type, _query(e), e.resource, e.if_match))
        assert e.logical_id
        return _from_written(resources.update(store, ctx, e.resource_type, e.logical_id, e.resource, e.if_match))
    if e.method == "PATCH":
        assert e.logical_id
        return _from_written(resources.patch(store, ctx, e.resource_type, e.logical_id, e.patch_ops, e.if_match))
    if e.method == "DELETE":
        if e.query is not None:
            return _from_deleted(resources.conditional_delete(store, ctx, e.resource_type, _query(e)))
        assert e.logical_id
        return _from_deleted(resources.delete(store, ctx, e.resource_type, e.logical_id, e.if_match))
    return _get(store, ctx, e)


def _query(e: Entry) -> str:
    return urlencode(e.query or [])


def ingest_transaction(store: Store, ctx: AccessContext, bundle: dict[str, Any]) -> list[EntryResponse]:
    """Load a transaction bundle (demo data, benchmark, import) without echoing resources back."""
    return transaction(store, ctx, bundle, representation=False)

