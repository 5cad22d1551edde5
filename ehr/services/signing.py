"""Signing a visit: the record becomes read-only, with a verifiable technical signature.

`sign_visit` finishes the Encounter, then signs, in one transaction, the exact current versions of
the Encounter and of every resource that references it (vital signs, diagnoses, prescriptions,
allergies, immunizations, procedures, family history, summary, re-visit): a JWS (ES256, the
facility's key from `FacilityKeys`, never in the database) over the canonical JSON of a manifest
that lists each version with the SHA-256 of its stored canonical JSON. The JWS goes into a
Provenance (`signature.data`, `sigFormat` application/jose) whose targets are those versions (and
the Patient version, which puts the Provenance in the patient's compartment).

Signed resources are read-only: update, patch and delete answer 409 (`resources.check_unsigned`).
A correction goes through `amend`, which writes a new version and signs it with a new
Provenance; the old version and its signature stay.

This is a technical signature (integrity and origin: which facility's system, which account).
A legal e-signature (a certificate from a licensed provider, Circular 13/2025) plugs in as a
second signature on the same manifest; see the README.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError

from ehr.crypto.signing_keys import FacilityKeys, SigningKeyMissing
from ehr.fhir import jsonio
from ehr.fhir.outcomes import FhirError, Issue, conflict, not_found, unprocessable
from ehr.services import policy, practitioners, resources
from ehr.services.common import format_instant
from ehr.services.context import AccessContext
from ehr.store import index, repository
from ehr.store.keys import now_us
from ehr.store.runtime import Store
from ehr.store.uow import UnitOfWork

SIGNATURE_TYPE = {"system": "urn:iso-astm:E1762-95:2013", "code": "1.2.840.10065.1.12.1.1", "display": "Author's Signature"}
PARTICIPANT = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
DATA_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
MANIFEST_VERSION = "ehr-vn-sign/1"


def _unavailable(message: str) -> FhirError:
    return FhirError(503, [Issue("transient", message)])


def _signer(ctx: AccessContext) -> str:
    """Whoever may write Provenance (doctors; not nurses or systems) signs for their own facility."""
    policy.authorize(ctx, "create", "Provenance")
    if ctx.kind == "system":
        raise FhirError(403, [Issue("forbidden", "visits are signed by clinic staff, not by systems")])
    if not ctx.organization:
        raise unprocessable("signing needs the facility the signer acts for")
    return ctx.organization


def _digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _manifest(targets: list[repository.StoredVersion], organization: str, ctx: AccessContext, when: str, purpose: str) -> bytes:
    return jsonio.canonical({
        "format": MANIFEST_VERSION,
        "purpose": purpose,
        "organization": organization,
        "signer": ctx.principal,
        "when": when,
        "targets": [
            {"reference": f"{t.resource_type}/{t.logical_id}/_history/{t.version_id}", "sha256": _digest(t.body or b"")}
            for t in targets
        ],
    })


def _provenance(targets: list[repository.StoredVersion], organization: str, when: str, jws_compact: str, activity: str,
                reason: str | None = None, clinician: dict[str, str] | None = None) -> dict[str, Any]:
    org = {"reference": f"Organization/{organization}"}
    agents: list[dict[str, Any]] = [{"type": {"coding": [{"system": PARTICIPANT, "code": "author"}]}, "who": org}]
    if clinician:  # the signed-in clinician, on behalf of the facility whose key signs
        agents.insert(0, {"type": {"coding": [{"system": PARTICIPANT, "code": "author"}]}, "who": clinician, "onBehalfOf": org})
    return {
        "resourceType": "Provenance",
        "target": [{"reference": f"{t.resource_type}/{t.logical_id}/_history/{t.version_id}"} for t in targets],
        "recorded": when,
        "activity": {"coding": [{"system": DATA_OPERATION, "code": activity}]},
        **({"reason": [{"text": reason}]} if reason else {}),
        "agent": agents,
        "signature": [{
            "type": [SIGNATURE_TYPE], "when": when, "who": org,
            "targetFormat": "application/fhir+json", "sigFormat": "application/jose",
            "data": base64.b64encode(jws_compact.encode()).decode(),
        }],
    }


def _sign(keys: FacilityKeys, organization: str, manifest: bytes) -> str:
    try:
        key = keys.private(organization)
    except SigningKeyMissing:
        raise _unavailable("the facility has no signing key: an operator creates it with `flask ehr signing create-key`") from None
    return jws.serialize_compact({"alg": "ES256", "kid": key.thumbprint(), "typ": "ehr-vn-sign+json"}, manifest, key)


def _write_signature(
    uow: UnitOfWork, store: Store, ctx: AccessContext, keys: FacilityKeys, organization: str,
    signed: list[repository.StoredVersion], patient: repository.StoredVersion, activity: str,
    reason: str | None = None, clinician: dict[str, str] | None = None,
) -> str:
    when = format_instant(now_us())
    covered = [*signed, patient]
    compact = _sign(keys, organization, _manifest(covered, organization, ctx, when, activity))
    provenance_id = str(uuid.uuid4())
    doc = _provenance(covered, organization, when, compact, activity, reason, clinician)
    doc["id"] = provenance_id
    prepared = resources.prepare_write(store, doc, "Provenance", provenance_id)
    resources.write_prepared(uow, store, prepared, "Provenance", provenance_id, "POST", None)
    repository.mark_signed(uow, [(v.resource_type, v.logical_id) for v in signed], provenance_id)
    return provenance_id


def visit_resources(uow: UnitOfWork, store: Store, encounter_id: str) -> list[tuple[str, str]]:
    """The Encounter and the current resources that reference it (not Provenances)."""
    found = [(t, i) for t, i in index.referrers_all(uow, "Encounter", encounter_id) if t != "Provenance"]
    return [("Encounter", encounter_id), *found]


def sign_visit(store: Store, ctx: AccessContext, keys: FacilityKeys, encounter_id: str) -> str:
    """Finish and sign the visit; returns the Provenance id. 409 when it is signed already."""
    organization = _signer(ctx)
    clinician = _clinician(store, ctx)
    with store.writing(policy.gate(ctx)) as uow:
        encounter = resources.read_live(uow, store, "Encounter", encounter_id, "sign")
        previous = repository.current(uow, "Encounter", encounter_id, for_update=True)
        assert previous is not None
        if previous.signed_by:
            raise conflict("the visit is signed already; corrections are made as amendments")
        doc = jsonio.loads_stored(encounter.body or b"{}")
        patient_ref = ((doc.get("subject") or {}).get("reference") or "")
        if not patient_ref.startswith("Patient/"):
            raise unprocessable("the visit has no patient", expression="Encounter.subject")
        doc["status"] = "finished"
        doc.setdefault("period", {})["end"] = format_instant(now_us())
        prepared = resources.prepare_write(store, doc, "Encounter", encounter_id)
        resources.write_prepared(uow, store, prepared, "Encounter", encounter_id, "PUT", previous)
        signed = []
        for rtype, rid in visit_resources(uow, store, encounter_id):
            version = repository.read_current(uow, store.keys, rtype, rid)
            if version is not None and not version.deleted:
                signed.append(version)
        patient = resources.read_live(uow, store, "Patient", patient_ref.split("/", 1)[1], "sign")
        provenance_id = _write_signature(uow, store, ctx, keys, organization, signed, patient, "UPDATE", clinician=clinician)
        resources.flush_writes(uow)
    return provenance_id


def _clinician(store: Store, ctx: AccessContext) -> dict[str, str] | None:
    found = practitioners.for_account(store, ctx)
    return {"reference": f"Practitioner/{found.practitioner_id}", "display": found.name} if found else None


def amend(store: Store, ctx: AccessContext, keys: FacilityKeys, resource_type: str, logical_id: str, doc: dict[str, Any],
          reason: str | None = None) -> str:
    """Correct a signed resource: a new version, signed by a new Provenance (with the reason, when
    given). Returns its id."""
    organization = _signer(ctx)
    clinician = _clinician(store, ctx)
    resources.check_writable(ctx, "update", resource_type, logical_id)
    resources.check_update_body(doc, logical_id)
    prepared = resources.prepare_write(store, doc, resource_type, logical_id)
    with store.writing(policy.gate(ctx)) as uow:
        previous = repository.current(uow, resource_type, logical_id, for_update=True)
        if previous is None or previous.deleted:
            raise not_found(f"{resource_type}/{logical_id} is not known")
        current = resources.read_live(uow, store, resource_type, logical_id, "amend")
        if not previous.signed_by:
            raise conflict("only signed resources are amended; update this one directly")
        compartment = previous.compartment
        if compartment is None:
            raise unprocessable("only resources of a patient's record are amended")
        del current
        written = resources.write_prepared(uow, store, prepared, resource_type, logical_id, "PUT", previous)
        patient = resources.read_live(uow, store, "Patient", compartment, "amend")
        provenance_id = _write_signature(uow, store, ctx, keys, organization, [written], patient, "UPDATE", reason, clinician)
        resources.flush_writes(uow)
    return provenance_id


@dataclass
class Verification:
    provenance_id: str
    ok: bool
    organization: str | None = None
    signer: str | None = None
    when: str | None = None
    targets: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def verify(store: Store, ctx: AccessContext, keys: FacilityKeys, provenance_id: str) -> Verification:
    """Check the JWS with the facility's public key and each covered version's digest."""
    report = Verification(provenance_id, ok=False)
    provenance = resources.read(store, ctx, "Provenance", provenance_id)
    doc = jsonio.loads_stored(provenance.body or b"{}")
    signatures = [s for s in doc.get("signature") or [] if s.get("sigFormat") == "application/jose"]
    if not signatures:
        report.problems.append("no JWS signature")
        return report
    try:
        compact = base64.b64decode(signatures[0]["data"]).decode()
        header = json.loads(base64.urlsafe_b64decode(compact.split(".")[0] + "=="))
        organization = str(((signatures[0].get("who") or {}).get("reference") or "").removeprefix("Organization/"))
        key = keys.public(organization, str(header.get("kid")))
        if key is None:
            report.problems.append("the facility key that made the signature is unknown")
            return report
        payload = json.loads(jws.deserialize_compact(compact, key, algorithms=["ES256"]).payload)
    except (KeyError, ValueError, JoseError, UnicodeDecodeError) as exc:
        report.problems.append(f"the signature does not verify ({type(exc).__name__})")
        return report
    report.organization, report.signer, report.when = payload.get("organization"), payload.get("signer"), payload.get("when")
    listed = [t["reference"] for t in doc.get("target") or []]
    manifest = [t["reference"] for t in payload.get("targets") or []]
    if listed != manifest:
        report.problems.append("the Provenance targets differ from the signed manifest")
    for item in payload.get("targets") or []:
        rtype, rid, _, version = item["reference"].split("/")
        report.targets.append(item["reference"])
        try:
            stored = resources.vread(store, ctx, rtype, rid, version)
        except FhirError:
            report.problems.append(f"{item['reference']} cannot be read")
            continue
        if _digest(stored.body or b"") != item["sha256"]:
            report.problems.append(f"{item['reference']} differs from the signed version")
    report.ok = not report.problems
    return report
