"""Patient identity: draft from a CCCD QR, $match (probabilistic matching), $merge."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from ehr.crypto.blind import fold_text
from ehr.fhir import jsonio
from ehr.fhir import references as refs
from ehr.fhir.outcomes import FhirError, Issue, bad_request, conflict, gone, not_found, unprocessable
from ehr.fhir.validation import validate_resource
from ehr.identity import qr
from ehr.services import auditing, policy, resources, search
from ehr.services.common import format_instant
from ehr.services.context import AccessContext
from ehr.services.policy import authorize
from ehr.store import index, repository
from ehr.store.access import Gate
from ehr.store.keys import CompartmentErased, now_us
from ehr.store.repository import StoredVersion
from ehr.store.runtime import Store
from ehr.store.uow import UnitOfWork

MATCH_GRADE = "http://hl7.org/fhir/StructureDefinition/match-grade"


# --- QR ------------------------------------------------------------------------------------------


def from_cccd_qr(store: Store, ctx: AccessContext, payload: str) -> dict[str, Any]:
    """A draft Patient from a CCCD QR payload; nothing is stored."""
    authorize(ctx, "create", "Patient")
    try:
        draft = qr.draft_patient(qr.parse(payload), store.systems)
    except qr.QrError as exc:
        raise FhirError(422, [Issue("invalid", str(exc), expression=("Parameters.parameter:payload",))]) from None
    validate_resource(dict(draft))
    return draft


# --- $match --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Match:
    version: StoredVersion
    score: float
    grade: str


def _folded_name(doc: dict[str, Any]) -> str:
    for name in doc.get("name") or ():
        text = name.get("text") or " ".join([name.get("family", ""), *name.get("given", [])])
        if text.strip():
            return fold_text(text)
    return ""


def _identifier_set(doc: dict[str, Any]) -> set[tuple[str | None, str]]:
    return {(i.get("system"), "".join(str(i.get("value")).split()).upper()) for i in doc.get("identifier") or () if i.get("value")}


def score(candidate: dict[str, Any], stored: dict[str, Any], cccd_system: str) -> float:
    """Weights: a shared identifier 0.5, the folded full name 0.25, the birth date 0.2 (same year
    0.05), the sex 0.05; two different national IDs cap the score at 0.2 (different people)."""
    total = 0.0
    mine, theirs = _identifier_set(candidate), _identifier_set(stored)
    if mine & theirs:
        total += 0.5
    name_a, name_b = _folded_name(candidate), _folded_name(stored)
    if name_a and name_a == name_b:
        total += 0.25
    born_a, born_b = candidate.get("birthDate"), stored.get("birthDate")
    if born_a and born_b:
        if born_a == born_b:
            total += 0.2
        elif born_a[:4] == born_b[:4]:
            total += 0.05
    if candidate.get("gender") and candidate.get("gender") == stored.get("gender"):
        total += 0.05
    ids_a = {v for s, v in mine if s == cccd_system}
    ids_b = {v for s, v in theirs if s == cccd_system}
    if ids_a and ids_b and not ids_a & ids_b:
        total = min(total, 0.2)
    return round(total, 2)


def grade(value: float) -> str:
    if value >= 0.95:
        return "certain"
    if value >= 0.5:
        return "probable"
    if value >= 0.25:
        return "possible"
    return "certainly-not"


def match(store: Store, ctx: AccessContext, candidate: dict[str, Any], only_certain: bool, count: int) -> list[Match]:
    """Patient/$match: candidates from the blind indexes (identifiers, full name), then scored on
    their decrypted content. Only candidates are decrypted, never the table."""
    authorize(ctx, "search", "Patient")
    if candidate.get("resourceType") != "Patient":
        raise bad_request("$match takes a Patient in the 'resource' parameter", "Parameters.parameter:resource")
    validate_resource(dict(candidate, id=candidate.get("id") or "candidate"))
    queries: list[list[tuple[str, str]]] = []
    for system, value in _identifier_set(candidate):
        queries.append([("identifier", f"{system}|{value}" if system else value)])
    folded = _folded_name(candidate)
    if folded:
        queries.append([("name", folded)])
    with store.reading(policy.gate(ctx)) as uow:  # candidates the principal may not see are never found
        ids: set[str] = set()
        for query in queries:
            ids.update(search.find_ids(uow, store, "Patient", query, 100))
        read = repository.read_many(uow, store.keys, [("Patient", i) for i in sorted(ids)])
    found = []
    for version in read.values():
        assert version.body is not None
        value = score(candidate, jsonio.loads_stored(version.body), store.systems.cccd)
        found.append(Match(version, value, grade(value)))
    found.sort(key=lambda m: (-m.score, m.version.logical_id))
    if only_certain:
        found = [m for m in found if m.grade == "certain"]
    chosen = [m for m in found if m.grade != "certainly-not"][:count]
    auditing.disclosed(store, ctx, "match", resource_type="Patient", versions=[m.version for m in chosen])
    return chosen


# --- $merge --------------------------------------------------------------------------------------


@dataclass
class MergeResult:
    target: StoredVersion
    moved: list[tuple[str, str]]
    preview: bool


def resolve_patient(store: Store, uow: UnitOfWork, reference: dict[str, Any] | None, identifiers: list[dict[str, Any]], role: str) -> str:
    where = f"Parameters.parameter:{role}-patient"
    if reference and identifiers:
        raise bad_request(f"give {role}-patient or {role}-patient-identifier, not both", where)
    if reference:
        parsed = refs.parse(str(reference.get("reference", "")), store.base_urls)
        if parsed.kind != "local" or parsed.resource_type != "Patient" or not parsed.logical_id:
            raise bad_request(f"{role}-patient must reference a Patient on this server", where)
        return parsed.logical_id
    if not identifiers:
        raise bad_request(f"{role}-patient or {role}-patient-identifier is required", where)
    found: set[str] | None = None
    for ident in identifiers:
        token = f"{ident.get('system')}|{ident.get('value')}" if ident.get("system") else str(ident.get("value"))
        ids = set(search.find_ids(uow, store, "Patient", [("identifier", token)], 3))
        found = ids if found is None else found & ids
    if not found or len(found) != 1:
        raise FhirError.one(422, "multiple-matches" if found else "not-found", f"{role}-patient-identifier must match exactly one Patient", where)
    return found.pop()


def _live_doc(uow: UnitOfWork, store: Store, logical_id: str, role: str) -> tuple[dict[str, Any], repository.Current]:
    current = repository.current(uow, "Patient", logical_id, for_update=True)
    try:
        version = repository.read_current(uow, store.keys, "Patient", logical_id)
    except CompartmentErased:
        raise gone(f"the {role} patient's record was erased") from None
    except repository.Invisible as hidden:
        raise policy.not_visible("merge", "Patient", logical_id, f"the {role} patient is not known", hidden.compartment) from None
    if current is None or version is None or version.deleted or version.body is None:
        raise not_found(f"the {role} patient is not known")
    return jsonio.loads_stored(version.body), current


def merge(
    store: Store,
    ctx: AccessContext,
    source_ref: dict[str, Any] | None,
    source_ids: list[dict[str, Any]],
    target_ref: dict[str, Any] | None,
    target_ids: list[dict[str, Any]],
    preview: bool,
) -> MergeResult:
    policy.check_merge_role(ctx)
    with store.writing(policy.gate(ctx)) as uow:
        source_id = resolve_patient(store, uow, source_ref, source_ids, "source")
        target_id = resolve_patient(store, uow, target_ref, target_ids, "target")
        if source_id == target_id:
            raise unprocessable("source and target are the same patient")
        source, source_cur = _live_doc(uow, store, source_id, "source")
        target, target_cur = _live_doc(uow, store, target_id, "target")
        # Both patients are visible to the principal (checked above, through its gate); merging
        # rewrites both records, so it is an operator's, or an admin's of a facility caring for both.
        policy.may_merge(uow, ctx, source_id, target_id)
        # Moving the references of every resource that points at the source is the record's own
        # repair, done with the server's authority and audited as one merge.
        uow.access = Gate(None, creator_org=uow.access.creator_org, context=ctx)
        if any(link.get("type") == "replaced-by" for link in source.get("link") or ()):
            raise conflict("the source patient was already merged")
        # A Consent is the patient's own decision about their record: it is never moved to
        # another record (the patient can still see and revoke it where they gave it).
        movers = [key for key in index.referrers_all(uow, "Patient", source_id) if key != ("Patient", target_id) and key[0] != "Consent"]
        if preview:
            return MergeResult(repository.read_current(uow, store.keys, "Patient", target_id), movers, True)  # type: ignore[arg-type]
        # 1. The source steps down first, so the target may take over its active national ID.
        source["active"] = False
        source["link"] = [*(source.get("link") or []), {"other": {"reference": f"Patient/{target_id}"}, "type": "replaced-by"}]
        _rewrite(uow, store, "Patient", source_id, source, source_cur)
        # 2. The target takes the source's identifiers (active CCCD only if it has none itself).
        _absorb_identifiers(store, target, source)
        target["link"] = [*(target.get("link") or []), {"other": {"reference": f"Patient/{source_id}"}, "type": "replaces"}]
        written_target = _rewrite(uow, store, "Patient", target_id, target, target_cur)
        # 3. Every resource that pointed at the source points at the target, in its compartment.
        for rtype, rid in movers:
            try:
                version = repository.read_current(uow, store.keys, rtype, rid)
            except CompartmentErased:
                continue  # an erased record stays erased
            current = repository.current(uow, rtype, rid, for_update=True)
            if version is None or version.body is None or current is None:
                continue
            doc = jsonio.loads_stored(version.body)
            refs.retarget(doc, "Patient", source_id, target_id, store.base_urls)
            _rewrite(uow, store, rtype, rid, doc, current)
        # 4. A Provenance keeps what happened; the audit log says who did it.
        provenance = {
            "resourceType": "Provenance",
            "target": [{"reference": f"Patient/{target_id}"}, {"reference": f"Patient/{source_id}"}],
            "recorded": format_instant(now_us()),
            "activity": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation", "code": "UPDATE"}], "text": "merge"},
            "reason": [{"text": f"Patient/{source_id} merged into Patient/{target_id}; {len(movers)} resources moved"}],
            "agent": [{"who": {"display": ctx.principal}}],
        }
        prov_id = str(uuid.uuid4())
        prepared = resources.prepare_write(store, provenance, "Provenance", prov_id)
        resources.write_prepared(uow, store, prepared, "Provenance", prov_id, "POST", None)
        resources.flush_writes(uow)
        # One record per patient, so each of the two health books shows the merge.
        for patient_id in (target_id, source_id):
            auditing.queued(uow, store, ctx, "patient.merge", resource_type="Patient", logical_id=patient_id, compartment=patient_id,
                            detail={"source": source_id, "target": target_id, "moved": len(movers), "provenance": prov_id})
    return MergeResult(written_target, movers, False)


def _absorb_identifiers(store: Store, target: dict[str, Any], source: dict[str, Any]) -> None:
    have = _identifier_set(target)
    target_has_cccd = any(i.get("system") == store.systems.cccd and i.get("use") != "old" for i in target.get("identifier") or ())
    added = []
    for ident in source.get("identifier") or ():
        key = (ident.get("system"), "".join(str(ident.get("value")).split()).upper())
        if key in have:
            continue
        copy = json.loads(json.dumps(ident))
        if not (ident.get("system") == store.systems.cccd and not target_has_cccd and ident.get("use") != "old"):
            copy["use"] = "old"
        added.append(copy)
    if added:
        target["identifier"] = [*(target.get("identifier") or []), *added]


def _rewrite(uow: UnitOfWork, store: Store, rtype: str, rid: str, doc: dict[str, Any], current: repository.Current) -> StoredVersion:
    prepared = resources.prepare_write(store, doc, rtype, rid)
    written = resources.write_prepared(uow, store, prepared, rtype, rid, "PUT", current)
    resources.flush_writes(uow)
    return written

