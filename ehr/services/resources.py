"""FHIR RESTful interactions on the encrypted store: create, read, vread, update, patch, delete,
history. HTTP-agnostic: the FHIR API, the clinic pages and the CLI all call these.

Write path, designed for throughput: validate once, outside the database lock; then in one
transaction take any condition lock, check references, encrypt, append the version and replace
the index rows.
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass, field
from typing import Any

import jsonpatch
import jsonpointer

from ehr.fhir import jsonio
from ehr.fhir import references as refs
from ehr.fhir.outcomes import (
    FhirError,
    Issue,
    bad_request,
    conflict,
    gone,
    not_found,
    not_supported,
    precondition_failed,
    unprocessable,
)
from ehr.fhir.shape import WalkResult
from ehr.fhir.validation import validate_resource
from ehr.services import auditing, compartments, indexing, matching, organizations, policy, revocations, rules
from ehr.services.common import check_id, check_type, format_instant, parse_instant
from ehr.services.context import AccessContext
from ehr.services.policy import authorize
from ehr.store import access, index, repository
from ehr.store.keys import CompartmentErased, now_us
from ehr.store.repository import Current, Invisible, StoredVersion, VersionConflict
from ehr.store.runtime import CursorError, Store
from ehr.store.uow import UnitOfWork

SERVER_WRITTEN_TYPES = frozenset({"AuditEvent"})


@dataclass(frozen=True)
class Written:
    """The outcome of a create/update/patch: the stored version and the HTTP status it implies."""

    status: int
    version: StoredVersion
    warnings: list[Issue] = field(default_factory=list)

    @property
    def created(self) -> bool:
        return self.status == 201


@dataclass(frozen=True)
class Deleted:
    version_id: int | None  # the tombstone's version, None when nothing was deleted now
    last_updated: int | None


@dataclass
class Prepared:
    doc: dict[str, Any]
    walked: WalkResult
    warnings: list[Issue]


def check_client_writable(ctx: AccessContext, resource_type: str) -> None:
    if resource_type in SERVER_WRITTEN_TYPES and ctx.kind != "server":
        raise not_supported(405, f"{resource_type} is written by the server only")


def prepare_write(store: Store, doc: dict[str, Any], resource_type: str, logical_id: str) -> Prepared:
    """Set the server-controlled fields provisionally, validate, apply business rules (no lock)."""
    if doc.get("resourceType") != resource_type:
        raise bad_request("resourceType does not match the type in the URL", "resourceType")
    doc["id"] = logical_id
    meta = doc.get("meta")
    if meta is None:
        meta = doc["meta"] = {}
    if isinstance(meta, dict):
        # Provisional values of the right shape; the real ones are set inside the transaction.
        meta["versionId"] = "1"
        meta["lastUpdated"] = format_instant(now_us())
    walked = validate_resource(doc)
    return Prepared(doc, walked, rules.check(resource_type, doc, store.systems))


@dataclass(frozen=True)
class PendingReference:
    """A reference whose target is checked once every entry of a bundle is written."""

    source: str  # "Type/id" of the referring resource
    path: str
    resource_type: str
    logical_id: str
    version: str | None


def _resolve_references(
    uow: UnitOfWork,
    store: Store,
    prepared: Prepared,
    resource_type: str,
    logical_id: str,
    deferred: list[PendingReference] | None = None,
) -> list[tuple[str, str]]:
    """Check references (now, or later via `deferred`); return the (type, id) targets here."""
    doc = prepared.doc
    contained_ids = {c.get("id") for c in doc.get("contained") or () if isinstance(c, dict)}
    local: list[tuple[str, str, str | None, str]] = []
    integrity = store.referential_integrity and resource_type != "Bundle"
    for path, ref in prepared.walked.references:
        value = ref.get("reference")
        if not isinstance(value, str):
            continue
        parsed = refs.parse(value, store.base_urls)
        if parsed.kind == "contained":
            if parsed.logical_id and parsed.logical_id not in contained_ids:
                raise bad_request("a local reference names no contained resource (ref-1)", path, code="invariant")
        elif parsed.kind == "local":
            assert parsed.resource_type and parsed.logical_id
            local.append((parsed.resource_type, parsed.logical_id, parsed.version, path))
        elif integrity and parsed.kind == "invalid":
            raise unprocessable("the reference is not a valid resource reference", path)
        elif integrity and parsed.kind in ("urn", "conditional"):
            raise unprocessable("urn: and conditional references resolve only inside a transaction bundle", path)
    if resource_type == "Bundle":
        return []  # a stored Bundle's references point into the Bundle itself
    if integrity:
        pending = [
            PendingReference(f"{resource_type}/{logical_id}", path, t, i, version)
            for t, i, version, path in local
            if (t, i) != (resource_type, logical_id)
        ]
        if deferred is not None:
            deferred.extend(pending)
        else:
            check_references(uow, pending)
    return [(t, i) for t, i, _, _ in local]


def _claim_national_ids(uow: UnitOfWork, store: Store, doc: dict[str, Any], logical_id: str) -> None:
    """At most one active Patient per national ID, race-free: lock each number, then look.

    The lock key is the one conditional create takes for the same identifier, so plain and
    conditional creates of one CCCD queue behind each other on both databases.
    """
    numbers = rules.national_ids(doc, store.systems)
    if not numbers:
        return
    repository.lock(uow, [store.blind.lock_key("Patient", "identifier", n) for n in numbers])
    for number in numbers:
        holders = index.token_holders(uow, "Patient", indexing.NATIONAL_ID, indexing.national_id_token(store, number))
        others = set(holders) - {logical_id}
        if others:
            at = next(
                (f"Patient.identifier[{i}].value" for i, ident in enumerate(doc.get("identifier") or [])
                 if isinstance(ident, dict) and "".join(str(ident.get("value", "")).split()) == number),
                "Patient.identifier",
            )
            text = "another active Patient already holds this national ID; search for it and update it, or merge"
            holder = sorted(others)[0]
            if uow.access is not None and uow.access.restriction is not None and not policy.patient_visible(uow, uow.access, holder):
                # The same answer as for a record the caller sees (no id, same text): a national
                # ID registry cannot hide that a number is taken. The attempt is audited in the
                # holder's record, so the patient sees who tried to register their number.
                raise policy.Denied(409, [Issue("conflict", text, expression=(at,))], "create", "Patient", None, holder)
            raise conflict(text, at)


def flush_writes(uow: UnitOfWork) -> None:
    """Send the queued rows now; a concurrent writer of the same id becomes a 409."""
    try:
        repository.flush(uow)
    except VersionConflict:
        raise conflict("a resource with this id was created by another request; retry") from None


def check_references(uow: UnitOfWork, pending: list[PendingReference]) -> None:
    """422 naming the first reference whose target is not a live resource (or version) here."""
    live = repository.live_ids(uow, {(p.resource_type, p.logical_id) for p in pending})
    for p in pending:
        if (p.resource_type, p.logical_id) not in live:
            raise unprocessable("the referenced resource does not exist on this server", p.path)
        if p.version is not None and not (p.version.isdigit() and repository.version_exists(uow, p.resource_type, p.logical_id, int(p.version))):
            raise unprocessable("the referenced version does not exist on this server", p.path)


def write_prepared(
    uow: UnitOfWork,
    store: Store,
    prepared: Prepared,
    resource_type: str,
    logical_id: str,
    method: str,
    previous: Current | None,
    deferred: list[PendingReference] | None = None,
) -> StoredVersion:
    local_refs = _resolve_references(uow, store, prepared, resource_type, logical_id, deferred)
    if resource_type == "Patient":
        _claim_national_ids(uow, store, prepared.doc, logical_id)
    compartment = compartments.decide(uow, store, resource_type, logical_id, prepared.doc, prepared.walked.references)
    action = {"POST": "create", "PATCH": "patch"}.get(method, "update" if previous is not None and not previous.deleted else "create")
    policy.check_write_target(uow, resource_type, logical_id, compartment, previous, action)
    if resource_type == "Organization":
        organizations.check_organization(uow, store, prepared.doc, logical_id, previous)
    if resource_type == "Consent" and previous is not None and not previous.deleted:
        revocations.consent_changed(uow, previous.compartment, revocations.previous_doc(uow, store, logical_id), prepared.doc)
    version_id = 1 if previous is None else previous.version_id + 1
    stamp = now_us()
    doc = prepared.doc
    if isinstance(doc.get("meta"), dict):
        doc["meta"]["versionId"] = str(version_id)
        doc["meta"]["lastUpdated"] = format_instant(stamp)
    body = jsonio.canonical(doc)
    try:
        repository.write_version(uow, store.keys, resource_type, logical_id, version_id, method, body, compartment, stamp, previous)
    except CompartmentErased:
        raise gone("the patient's record was erased; nothing can be added to it") from None
    except VersionConflict:
        raise conflict("the resource was changed by another request; retry") from None
    rows = indexing.rows_for(store, resource_type, doc, local_refs)
    index.replace(uow, resource_type, logical_id, compartment, rows, fresh=previous is None)
    gate = uow.access
    if resource_type == "Patient" and previous is None and gate.care_org_on_register:
        access.add_care(uow, gate.care_org_on_register, logical_id, "registered", stamp, store.care_expiry(stamp))  # staff registered the patient
    elif resource_type == "Encounter" and compartment and gate.care_org_on_register and method != "DELETE":
        access.renew_care(uow, gate.care_org_on_register, compartment, stamp, store.care_expiry(stamp))  # a visit extends the care
    _audit_write(uow, store, action, resource_type, logical_id, compartment)
    return StoredVersion(resource_type, logical_id, version_id, stamp, method, False, body, compartment=compartment)


def _audit_write(uow: UnitOfWork, store: Store, action: str, resource_type: str, logical_id: str, compartment: str | None) -> None:
    ctx = uow.access.context or AccessContext.server()
    auditing.queued(uow, store, ctx, action, resource_type=resource_type, logical_id=logical_id, compartment=compartment)


# --- interactions -----------------------------------------------------------------------------
#
# Each interaction has a core `*_in(uow, ...)` that runs inside a caller's unit of work (so a
# transaction bundle runs all its entries in one database transaction) and a thin wrapper that
# opens the unit of work for a single request. `deferred` lists collect reference and delete
# checks that a bundle makes once, after all its entries.


@dataclass
class Deferred:
    references: list[PendingReference] = field(default_factory=list)
    deleted: list[tuple[str, str]] = field(default_factory=list)


def create_in(
    uow: UnitOfWork, store: Store, prepared: Prepared, resource_type: str, logical_id: str,
    condition: list[tuple[str, str]] | None, deferred: Deferred | None = None,
) -> Written:
    if condition:
        found = find_conditional(uow, store, resource_type, condition, "If-None-Exist")
        if len(found) > 1:
            raise precondition_failed("the condition matches more than one resource")
        if found:
            return Written(200, read_live(uow, store, resource_type, found[0]))
    stored = write_prepared(uow, store, prepared, resource_type, logical_id, "POST", None, deferred.references if deferred else None)
    return Written(201, stored, prepared.warnings)


def find_conditional(uow: UnitOfWork, store: Store, resource_type: str, condition: list[tuple[str, str]], where: str) -> list[str]:
    """Lock the condition's keys, then search: writers testing one condition queue behind each other."""
    repository.lock(uow, matching.lock_keys(store, resource_type, condition))
    return matching.find(uow, store, resource_type, condition, limit=2, where=where)


def create(store: Store, ctx: AccessContext, doc: dict[str, Any], if_none_exist: str | None = None) -> Written:
    resource_type = str(doc.get("resourceType"))
    check_writable(ctx, "create", resource_type)
    logical_id = str(uuid.uuid4())
    condition = matching.parse_conditions(if_none_exist) if if_none_exist is not None else None
    prepared = prepare_write(store, doc, resource_type, logical_id)
    with store.writing(policy.gate(ctx)) as uow:
        written = create_in(uow, store, prepared, resource_type, logical_id, condition)
        flush_writes(uow)
    return written


def check_writable(ctx: AccessContext, interaction: str, resource_type: str, logical_id: str | None = None) -> None:
    check_type(resource_type)
    if logical_id is not None:
        check_id(logical_id)
    authorize(ctx, interaction, resource_type)
    check_client_writable(ctx, resource_type)


def check_update_body(doc: dict[str, Any], logical_id: str) -> None:
    if "id" not in doc:
        raise bad_request("the resource has no id; an update must carry the id of the URL", "id", code="required")
    if doc.get("id") != logical_id:
        raise bad_request("the id in the body does not match the id in the URL", "id")


def update_in(
    uow: UnitOfWork, store: Store, prepared: Prepared, resource_type: str, logical_id: str,
    if_match: int | None, deferred: Deferred | None = None,
) -> Written:
    previous = repository.current(uow, resource_type, logical_id, for_update=True)
    _check_visible(uow, previous, resource_type, logical_id, "update")
    check_unsigned(previous, resource_type, logical_id)
    _check_if_match(previous, if_match)
    stored = write_prepared(uow, store, prepared, resource_type, logical_id, "PUT", previous, deferred.references if deferred else None)
    return Written(201 if previous is None or previous.deleted else 200, stored, prepared.warnings)


def update(
    store: Store, ctx: AccessContext, resource_type: str, logical_id: str, doc: dict[str, Any], if_match: int | None = None
) -> Written:
    check_writable(ctx, "update", resource_type, logical_id)
    check_update_body(doc, logical_id)
    prepared = prepare_write(store, doc, resource_type, logical_id)
    with store.writing(policy.gate(ctx)) as uow:
        written = update_in(uow, store, prepared, resource_type, logical_id, if_match)
        flush_writes(uow)
    return written


def conditional_update(
    store: Store, ctx: AccessContext, resource_type: str, query: str, doc: dict[str, Any], if_match: int | None = None
) -> Written:
    """PUT [type]?[search]: none matches -> create (with the body's id if it has one); one ->
    update it (a body id must agree); several -> 412. Race-free like conditional create."""
    check_writable(ctx, "update", resource_type)
    condition = matching.parse_conditions(query, "url")
    body_id = doc.get("id")
    provisional = body_id if isinstance(body_id, str) else str(uuid.uuid4())
    prepared = prepare_write(store, doc, resource_type, provisional)
    with store.writing(policy.gate(ctx)) as uow:
        written = conditional_update_in(uow, store, prepared, resource_type, condition, body_id, if_match)
        flush_writes(uow)
    return written


def conditional_update_in(
    uow: UnitOfWork, store: Store, prepared: Prepared, resource_type: str, condition: list[tuple[str, str]],
    body_id: Any, if_match: int | None, deferred: Deferred | None = None,
) -> Written:
    found = find_conditional(uow, store, resource_type, condition, "url")
    if len(found) > 1:
        raise precondition_failed("the condition matches more than one resource")
    if found:
        if body_id is not None and body_id != found[0]:
            raise bad_request("the id in the body does not match the resource the condition found", "id")
        target = found[0]
    else:
        target = body_id if isinstance(body_id, str) else prepared.doc["id"]
    prepared.doc["id"] = target
    return update_in(uow, store, prepared, resource_type, target, if_match, deferred)


def patch_in(
    uow: UnitOfWork, store: Store, resource_type: str, logical_id: str, operations: Any,
    if_match: int | None, deferred: Deferred | None = None,
) -> Written:
    if not isinstance(operations, list) or not operations or not all(isinstance(op, dict) for op in operations):
        raise bad_request("a JSON Patch document is a non-empty array of operation objects")
    previous = repository.current(uow, resource_type, logical_id, for_update=True)
    if previous is None:
        raise not_found(f"{resource_type}/{logical_id} is not known")
    _check_visible(uow, previous, resource_type, logical_id, "patch")
    if previous.deleted:
        raise gone(f"{resource_type}/{logical_id} was deleted")
    check_unsigned(previous, resource_type, logical_id)
    _check_if_match(previous, if_match)
    current = read_live(uow, store, resource_type, logical_id, "patch")
    assert current.body is not None
    try:
        patched = jsonpatch.JsonPatch(operations).apply(jsonio.loads_stored(current.body))
    except jsonpatch.InvalidJsonPatch:
        raise bad_request("the JSON Patch document is not valid") from None
    except jsonpatch.JsonPatchTestFailed:
        raise unprocessable("a JSON Patch 'test' operation failed", code="processing") from None
    except (jsonpatch.JsonPatchConflict, jsonpointer.JsonPointerException, TypeError, KeyError, IndexError):
        raise unprocessable("the JSON Patch cannot be applied to this resource", code="processing") from None
    if not isinstance(patched, dict) or patched.get("resourceType") != resource_type or patched.get("id") != logical_id:
        raise unprocessable("a patch may not change the resourceType or id", code="processing")
    try:
        prepared = prepare_write(store, patched, resource_type, logical_id)
    except FhirError as exc:
        raise FhirError(422, exc.issues) from None  # the patch was valid; its result is not
    stored = write_prepared(uow, store, prepared, resource_type, logical_id, "PATCH", previous, deferred.references if deferred else None)
    return Written(200, stored, prepared.warnings)


def patch(
    store: Store, ctx: AccessContext, resource_type: str, logical_id: str, operations: Any, if_match: int | None = None
) -> Written:
    check_writable(ctx, "patch", resource_type, logical_id)
    with store.writing(policy.gate(ctx)) as uow:
        written = patch_in(uow, store, resource_type, logical_id, operations, if_match)
        flush_writes(uow)
    return written


def delete_in(
    uow: UnitOfWork, store: Store, resource_type: str, logical_id: str, if_match: int | None,
    deferred: Deferred | None = None, missing_ok: bool = False,
) -> Deleted:
    previous = repository.current(uow, resource_type, logical_id, for_update=True)
    if previous is None:
        if missing_ok:
            return Deleted(None, None)
        raise not_found(f"{resource_type}/{logical_id} is not known")
    _check_visible(uow, previous, resource_type, logical_id, "delete")
    if previous.deleted:
        return Deleted(None, None)  # deleting again changes nothing (R4 http.html#delete)
    policy.check_may_change(uow, uow.access.context if uow.access is not None else None, resource_type, logical_id, previous, "delete")
    check_unsigned(previous, resource_type, logical_id)
    _check_if_match(previous, if_match)
    if store.referential_integrity:
        if deferred is not None:
            deferred.deleted.append((resource_type, logical_id))
        else:
            check_unreferenced(uow, [(resource_type, logical_id)])
    if resource_type == "Consent":
        revocations.consent_changed(uow, previous.compartment, revocations.previous_doc(uow, store, logical_id), None)
    stamp = now_us()
    try:
        repository.write_version(
            uow, store.keys, resource_type, logical_id, previous.version_id + 1, "DELETE", None, previous.compartment, stamp, previous
        )
    except VersionConflict:
        raise conflict("the resource was changed by another request; retry") from None
    index.remove(uow, resource_type, logical_id)
    _audit_write(uow, store, "delete", resource_type, logical_id, previous.compartment)
    return Deleted(previous.version_id + 1, stamp)


def check_unreferenced(uow: UnitOfWork, targets: list[tuple[str, str]]) -> None:
    """409 when a live resource still references one of the deleted targets."""
    restriction = uow.access.restriction if uow.access is not None else None
    for resource_type, logical_id in targets:
        users = [u for u in index.referrers(uow, resource_type, logical_id) if u not in targets]
        if users:
            # Only referrers the caller may see are named: a 409 must not disclose hidden records.
            shown = sorted(access.visible_keys(uow, restriction, users))
            names = f" ({', '.join(f'{t}/{i}' for t, i in shown)})" if shown else ""
            raise conflict(f"{resource_type}/{logical_id} is referenced by other resources{names}; delete or change them first")


def delete(store: Store, ctx: AccessContext, resource_type: str, logical_id: str, if_match: int | None = None) -> Deleted:
    check_writable(ctx, "delete", resource_type, logical_id)
    with store.writing(policy.gate(ctx)) as uow:
        return delete_in(uow, store, resource_type, logical_id, if_match)


def conditional_delete(store: Store, ctx: AccessContext, resource_type: str, query: str) -> Deleted:
    """DELETE [type]?[search]: none matches -> nothing (200); one -> delete it; several -> 412."""
    check_writable(ctx, "delete", resource_type)
    condition = matching.parse_conditions(query, "url")
    with store.writing(policy.gate(ctx)) as uow:
        return conditional_delete_in(uow, store, resource_type, condition)


def conditional_delete_in(
    uow: UnitOfWork, store: Store, resource_type: str, condition: list[tuple[str, str]], deferred: Deferred | None = None
) -> Deleted:
    found = find_conditional(uow, store, resource_type, condition, "url")
    if len(found) > 1:
        raise precondition_failed("the condition matches more than one resource; conditional delete removes one")
    if not found:
        return Deleted(None, None)
    return delete_in(uow, store, resource_type, found[0], None, deferred)


def _check_visible(uow: UnitOfWork, previous: Current | None, resource_type: str, logical_id: str, action: str) -> None:
    """A resource the context cannot see answers like one that does not exist, before any
    other check (If-Match, deleted state) could tell them apart."""
    if previous is None:
        return
    try:
        repository.check_visible(uow, previous.compartment, previous.created_by_org, resource_type)
    except Invisible:
        raise policy.not_visible(action, resource_type, logical_id, compartment=previous.compartment) from None


def check_unsigned(previous: Current | None, resource_type: str, logical_id: str) -> None:
    """A signed version is final: corrections are amendments with their own signature."""
    if previous is not None and previous.signed_by and not previous.deleted:
        raise conflict(
            f"{resource_type}/{logical_id} is signed (Provenance/{previous.signed_by}) and cannot be changed; "
            "corrections are made as signed amendments"
        )


def _check_if_match(previous: Current | None, if_match: int | None) -> None:
    if if_match is None:
        return
    if previous is None or previous.deleted or previous.version_id != if_match:
        raise precondition_failed("If-Match does not name the current version")


def read_live(uow: UnitOfWork, store: Store, resource_type: str, logical_id: str, action: str = "read") -> StoredVersion:
    try:
        found = repository.read_current(uow, store.keys, resource_type, logical_id)
    except CompartmentErased:
        raise gone(f"{resource_type}/{logical_id} was erased") from None
    except Invisible as hidden:
        raise policy.not_visible(action, resource_type, logical_id, compartment=hidden.compartment) from None
    if found is None:
        raise not_found(f"{resource_type}/{logical_id} is not known")
    if found.deleted:
        raise FhirError(410, [Issue("deleted", f"{resource_type}/{logical_id} was deleted")], {"ETag": f'W/"{found.version_id}"'})
    return found


def read(store: Store, ctx: AccessContext, resource_type: str, logical_id: str) -> StoredVersion:
    check_type(resource_type)
    check_id(logical_id)
    authorize(ctx, "read", resource_type)
    with store.reading(policy.gate(ctx)) as uow:
        found = read_live(uow, store, resource_type, logical_id)
    auditing.disclosed(store, ctx, "read", resource_type=resource_type, logical_id=logical_id, versions=[found])
    return found


def vread(store: Store, ctx: AccessContext, resource_type: str, logical_id: str, version: str) -> StoredVersion:
    check_type(resource_type)
    check_id(logical_id)
    authorize(ctx, "vread", resource_type)
    if not version.isdigit() or len(version) > 9:
        raise not_found(f"version {version[:16]} of {resource_type}/{logical_id} is not known")
    with store.reading(policy.gate(ctx)) as uow:
        try:
            found = repository.read_version(uow, store.keys, resource_type, logical_id, int(version))
        except CompartmentErased:
            raise gone(f"{resource_type}/{logical_id} was erased") from None
        except Invisible as hidden:
            raise policy.not_visible("vread", resource_type, logical_id, f"version {version} of {resource_type}/{logical_id} is not known", hidden.compartment) from None
    if found is None:
        raise not_found(f"version {version} of {resource_type}/{logical_id} is not known")
    if found.deleted:
        raise gone(f"version {version} of {resource_type}/{logical_id} is a deletion")
    auditing.disclosed(store, ctx, "vread", resource_type=resource_type, logical_id=logical_id, versions=[found])
    return found


@dataclass(frozen=True)
class HistoryPage:
    entries: list[StoredVersion]
    next_token: str | None


def history(
    store: Store,
    ctx: AccessContext,
    resource_type: str | None,
    logical_id: str | None,
    since: str | None,
    count: int,
    page_token: str | None,
) -> HistoryPage:
    if resource_type is not None:
        check_type(resource_type)
    if logical_id is not None:
        check_id(logical_id)
    authorize(ctx, "history", resource_type or "*")
    since_us = parse_instant(since, "_since") if since else None
    before = None
    if page_token:
        try:
            payload = store.open_cursor(page_token)
        except CursorError:
            raise bad_request("the paging token is not valid", "_page") from None
        if payload.get("scope") != [resource_type, logical_id, since]:
            raise bad_request("the paging token belongs to another history", "_page")
        before = int(payload["before"])  # type: ignore[call-overload]
    with store.reading(policy.gate(ctx)) as uow:
        if logical_id is not None and resource_type is not None:
            pointer = repository.current(uow, resource_type, logical_id)
            if pointer is None:
                raise not_found(f"{resource_type}/{logical_id} is not known")
            try:
                repository.check_visible(uow, pointer.compartment, pointer.created_by_org, resource_type)
            except Invisible:
                raise policy.not_visible("history", resource_type, logical_id, compartment=pointer.compartment) from None
        rows = repository.history(uow, store.keys, resource_type, logical_id, since_us, before, count + 1)
    more = len(rows) > count
    rows = rows[:count]
    auditing.disclosed(store, ctx, "history", resource_type=resource_type, logical_id=logical_id, versions=rows)
    token = store.sign_cursor({"scope": [resource_type, logical_id, since], "before": rows[-1].seq}) if more and rows else None
    return HistoryPage(rows, token)


def copy_doc(doc: dict[str, Any]) -> dict[str, Any]:
    """Callers that reuse a dict after a write pass a copy: writes set id and meta in place."""
    return copy.deepcopy(doc)
