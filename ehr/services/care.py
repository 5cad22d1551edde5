"""Care relationships and emergency (break-glass) access: how staff come to see a patient.

- `check_in`: the patient presents their citizen ID at a facility's desk; the facility starts (or
  renews) a care relationship with the patient, audited and shown to the patient, who can end it.
  Only for the facility's own patients (registered there, or already in its care) or with a basis
  for another facility's patient: the patient's active Consent naming the facility, or the
  clinician's own break-glass grant. Without one the answer is the one an unregistered number
  gets, so a typed number tells nothing, and the attempt goes into the holder's trail.
- Care relationships end `Store.care_days` (EHR_CARE_DAYS, 90) after the facility's latest check-in
  or Encounter with the patient, or when the patient ends them on the sharing page (`end`).
- `record`: a facility admin records a care relationship for a known patient.
- `break_glass`: a clinician opens a record without consent in an emergency, stating a reason;
  the grant is personal (the clinician's account), time-limited, audited with the reason
  (encrypted under the patient's key) and shown to the patient.

System clients never get care relationships: they read what they wrote and what patients consent to.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any
from datetime import datetime, timedelta

from ehr.crypto.envelope import IntegrityFailure
from ehr.fhir.dates import DEFAULT_ZONE
from ehr.fhir.healthbook import CONSENT_ACTOR_ROLE
from ehr.fhir.outcomes import FhirError, Issue, bad_request, not_found
from ehr.identity.rules import IdentifierError, check_cccd
from ehr.services import auditing, indexing, queue, resources
from ehr.services.context import AccessContext
from ehr.services.policy import Denied
from ehr.store import access, index
from ehr.store.access import INTERNAL, Restriction
from ehr.store.keys import CompartmentErased, now_us
from ehr.store.runtime import Store
from ehr.store.uow import UnitOfWork

log = logging.getLogger(__name__)
CLINICIANS = ("doctor", "nurse")
BREAK_GLASS_MINUTES = 60
MAX_BREAK_GLASS_MINUTES = 240


def _staff(ctx: AccessContext, roles: tuple[str, ...], action: str) -> str:
    if ctx.kind != "staff" or not ctx.organization or ctx.role not in roles:
        raise Denied(403, [Issue("forbidden", f"{action} is for {', '.join(roles)} staff of a facility")], action)
    return ctx.organization


NOT_OPENED = ("no patient record that this facility may open holds this citizen ID: register a new patient, "
              "or ask the patient to share their record with the facility (health book), or break glass in an emergency")


def check_in(store: Store, ctx: AccessContext, national_id: str, arrived_at: int | None = None) -> str:
    """Put the patient holding this citizen ID in the facility's care; their id (see the module doc).

    The patient then joins the facility's queue of the day (`queue.arrive`: a new queue number, or
    the unfinished visit they already have today) when the context queues patients (front desk,
    doctors, nurses; not facility admins); a queue that cannot be written (no Organization
    resource for the facility, say) leaves the check-in done. `arrived_at` (µs) is the arrival
    time (the web's clock).
    """
    organization = _staff(ctx, ("doctor", "nurse", "receptionist", "admin"), "care.check-in")
    number = _number(national_id)
    now = now_us()
    basis = None
    with store.writing(INTERNAL) as uow:
        patient_id = _holder(uow, store, number)
        basis = _basis(uow, ctx, organization, patient_id, now) if patient_id else None
        if patient_id and basis:
            access.add_care(uow, organization, patient_id, basis, now, store.care_expiry(now))
            auditing.queued(uow, store, ctx, "care.check-in", resource_type="Patient", logical_id=patient_id, compartment=patient_id,
                            detail={"basis": basis})
    if not patient_id or not basis:
        # The refused attempt is in the holder's trail (the patient sees who tried), not in the caller's answer.
        auditing.event(store, ctx, "care.check-in", "failure", resource_type="Patient" if patient_id else None,
                       logical_id=patient_id, compartment=patient_id)
        raise not_found(NOT_OPENED)
    _queue(store, ctx, patient_id, arrived_at)
    return patient_id


PAPER_CONSENT_DAYS = (1, 7, 30, 90)
_TREAT = "http://terminology.hl7.org/CodeSystem/v3-ActReason"


def check_in_with_paper_consent(store: Store, ctx: AccessContext, national_id: str, proof: str, days: int,
                                arrived_at: int | None = None) -> str:
    """Check in another facility's patient who signed this facility's paper consent form at the desk.

    The staff member records the proof (the form's number and where it is kept); a Consent is
    written into the patient's record (performer: the patient; the signed form as
    `sourceAttachment`; permit, treatment, this facility, the chosen days), the care relationship
    starts with the basis `paper-consent`, both audited and highlighted in the patient's access
    log, where the patient can withdraw it. An unregistered number gets the answer any number
    gets, so the form tells nothing about who is registered.
    """
    organization = _staff(ctx, ("doctor", "nurse", "receptionist", "admin"), "care.check-in")
    number = _number(national_id)
    proof = " ".join((proof or "").split())
    if not 5 <= len(proof) <= 200:
        raise bad_request("describe the signed consent form in 5-200 characters (its number and where it is kept)", "proof")
    if days not in PAPER_CONSENT_DAYS:
        raise bad_request(f"a paper consent lasts one of {', '.join(map(str, PAPER_CONSENT_DAYS))} days", "days")
    now = now_us()
    with store.writing(INTERNAL) as uow:
        patient_id = _holder(uow, store, number)
        if patient_id:
            consent_id = str(uuid.uuid4())
            doc = _paper_consent(patient_id, organization, proof, now, days)
            prepared = resources.prepare_write(store, doc, "Consent", consent_id)
            resources.write_prepared(uow, store, prepared, "Consent", consent_id, "POST", None)
            access.add_care(uow, organization, patient_id, "paper-consent", now, store.care_expiry(now))
            auditing.queued(uow, store, ctx, "care.check-in", resource_type="Patient", logical_id=patient_id, compartment=patient_id,
                            detail={"basis": "paper-consent", "consent": consent_id})
            resources.flush_writes(uow)
    if not patient_id:
        auditing.event(store, ctx, "care.check-in", "failure")
        raise not_found(NOT_OPENED)
    _queue(store, ctx, patient_id, arrived_at)
    return patient_id


def _paper_consent(patient_id: str, organization: str, proof: str, now: int, days: int) -> dict[str, Any]:
    start = datetime.fromtimestamp(now / 1_000_000, tz=DEFAULT_ZONE).replace(microsecond=0)
    end = start + timedelta(days=days)
    return {
        "resourceType": "Consent", "status": "active", "dateTime": start.isoformat(),
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent"}]}],
        "patient": {"reference": f"Patient/{patient_id}"},
        "performer": [{"reference": f"Patient/{patient_id}"}],
        "organization": [{"reference": f"Organization/{organization}"}],
        "sourceAttachment": {"contentType": "text/plain", "title": proof},
        "provision": {
            "type": "permit", "period": {"start": start.isoformat(), "end": end.isoformat()},
            "purpose": [{"system": _TREAT, "code": "TREAT"}],
            "actor": [{"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": CONSENT_ACTOR_ROLE}]},
                       "reference": {"reference": f"Organization/{organization}"}}],
        },
    }


def _queue(store: Store, ctx: AccessContext, patient_id: str, arrived_at: int | None) -> None:
    if queue.queues(ctx):
        try:
            queue.arrive(store, ctx, patient_id, arrived_at)
        except FhirError as exc:
            # The care relationship stands (committed above); the today page tells the desk that
            # the patient is not in the queue. Status and issue codes only: no values in logs.
            log.warning("check-in not queued: %s", exc)


def _number(national_id: str) -> str:
    try:
        return check_cccd(national_id)
    except IdentifierError:
        raise bad_request("not a valid 12-digit citizen ID (CCCD) number", "national_id") from None


def _holder(uow: UnitOfWork, store: Store, number: str) -> str | None:
    holders = index.token_holders(uow, "Patient", indexing.NATIONAL_ID, indexing.national_id_token(store, number))
    return holders[0] if len(holders) == 1 else None


def _basis(uow: UnitOfWork, ctx: AccessContext, organization: str, patient_id: str, now: int) -> str | None:
    """Why this facility may take the patient into its care now, or None."""
    creator = access.creator_of(uow, "Patient", patient_id)
    if creator == organization or access.in_care(uow, organization, patient_id, now):
        return "check-in"
    def opens(restriction: Restriction) -> bool:
        return access.row_visible(uow, restriction, patient_id, creator, "Patient")
    if ctx.account_id and opens(Restriction(break_glass_account=ctx.account_id, now_us=now, shared=False)):
        return "break-glass"
    if opens(Restriction(consent_org=organization, purpose=ctx.purpose, now_us=now, shared=False)):
        return "consent"
    return None


def record(store: Store, ctx: AccessContext, patient_id: str, organization: str | None = None) -> None:
    """An admin (or an operator, for any facility) records a care relationship."""
    if ctx.kind == "operator":
        if not organization:
            raise bad_request("name the facility (Organization id)", "organization")
    else:
        organization = _staff(ctx, ("admin",), "care.record")
    with store.writing(INTERNAL) as uow:
        if not index.live_of_type(uow, "Patient", [patient_id], None, 1):
            raise not_found(f"Patient/{patient_id} is not known")
        now = now_us()
        access.add_care(uow, organization, patient_id, "admin", now, store.care_expiry(now))
        # The facility is named: an operator records care for any facility, and `audit verify`
        # ties each care row to the record that started it.
        auditing.queued(uow, store, ctx, "care.record", resource_type="Patient", logical_id=patient_id, compartment=patient_id,
                        detail={"organization": organization})


@dataclass(frozen=True)
class Grant:
    patient_id: str
    expires_at: int  # microseconds since the epoch


def break_glass(store: Store, ctx: AccessContext, patient_id: str, reason: str, minutes: int = BREAK_GLASS_MINUTES) -> Grant:
    """Emergency access for one clinician to one patient, for a limited time, with a reason."""
    organization, text = _emergency(ctx, reason, minutes)
    now = now_us()
    expires = now + minutes * 60_000_000
    with store.writing(INTERNAL) as uow:
        if not index.live_of_type(uow, "Patient", [patient_id], None, 1):
            raise not_found(f"Patient/{patient_id} is not known")
        key = store.keys.for_write(uow, patient_id)  # the reason may describe the patient: their key
        access.add_break_glass(uow, dict(
            account_id=ctx.account_id, organization_id=organization, patient_id=patient_id,
            reason=key.seal(text.encode(), _reason_aad(patient_id, ctx.account_id, now)), key_id=key.key_id,
            created_at=now, expires_at=expires,
        ))
        auditing.queued(
            uow, store, ctx, "break-glass", resource_type="Patient", logical_id=patient_id, compartment=patient_id,
            detail={"reason": text, "minutes": minutes}, under_patient=True,
        )
    return Grant(patient_id, expires)


def break_glass_by_national_id(store: Store, ctx: AccessContext, national_id: str, reason: str,
                               minutes: int = BREAK_GLASS_MINUTES) -> Grant:
    """Break glass for the patient holding a presented citizen ID (the desk knows no record id)."""
    _emergency(ctx, reason, minutes)  # refuse a bad request before looking the number up
    number = _number(national_id)
    with store.reading(INTERNAL) as uow:
        patient_id = _holder(uow, store, number)
    if patient_id is None:
        auditing.event(store, ctx, "break-glass", "failure")
        raise not_found(NOT_OPENED)
    return break_glass(store, ctx, patient_id, reason, minutes)


def _emergency(ctx: AccessContext, reason: str, minutes: int) -> tuple[str, str]:
    """The clinician's facility and the normalised reason of a valid break-glass request."""
    organization = _staff(ctx, CLINICIANS, "break-glass")
    if not ctx.account_id:
        raise Denied(403, [Issue("forbidden", "break-glass is personal: sign in with your own account")], "break-glass")
    text = " ".join((reason or "").split())
    if len(text) < 10:
        raise bad_request("state the emergency reason (at least 10 characters)", "reason")
    if not 1 <= minutes <= MAX_BREAK_GLASS_MINUTES:
        raise bad_request(f"break-glass lasts 1 to {MAX_BREAK_GLASS_MINUTES} minutes", "minutes")
    return organization, text


def _reason_aad(patient_id: str, account_id: str, created_at: int) -> bytes:
    return f"ehr-break-glass|1|{patient_id}|{account_id}|{created_at}".encode()


@dataclass(frozen=True)
class EmergencyAccess:
    account_id: str
    organization_id: str | None
    reason: str | None  # None when the patient's record was erased
    created_at: int
    expires_at: int


def emergency_accesses(store: Store, patient_id: str) -> list[EmergencyAccess]:
    """Every break-glass opening of a patient's record, newest first (the patient sees these)."""
    out = []
    with store.reading(INTERNAL) as uow:
        for row in access.break_glass_for_patient(uow, patient_id):
            try:
                key = store.keys.by_id(uow, row["key_id"])
                reason: str | None = key.open(row["reason"], _reason_aad(patient_id, row["account_id"], row["created_at"])).decode()
            except (CompartmentErased, IntegrityFailure):
                reason = None  # the patient's record was erased: the reason went with it
            out.append(EmergencyAccess(row["account_id"], row["organization_id"], reason, row["created_at"], row["expires_at"]))
    return out


@dataclass(frozen=True)
class CareRelationship:
    organization_id: str
    source: str  # registered, check-in, consent, break-glass, admin
    since: int  # µs since the epoch
    until: int


def relationships(store: Store, patient_id: str) -> list[CareRelationship]:
    """The facilities that have the patient in their care now, newest first (the patient sees these)."""
    with store.reading(INTERNAL) as uow:
        rows = access.care_for_patient(uow, patient_id, now_us())
    return [CareRelationship(r["organization_id"], r["source"], r["created_at"], r["expires_at"]) for r in rows]


def end(store: Store, ctx: AccessContext, patient_id: str, organization_id: str) -> None:
    """The patient (or their representative) ends a facility's care: its next request no longer
    sees the record (what it wrote stays its own). `ctx` must already be the patient's (see
    `healthbook.for_patient`); the end is in the patient's trail."""
    if ctx.kind != "patient" or ctx.on_behalf_of != patient_id:
        raise Denied(403, [Issue("forbidden", "only the patient or their representative ends a care relationship")], "care.end")
    with store.writing(INTERNAL) as uow:
        if not access.end_care(uow, organization_id, patient_id):
            raise not_found("this facility does not have the patient in its care")
        auditing.queued(uow, store, ctx, "care.end", resource_type="Patient", logical_id=patient_id, compartment=patient_id,
                        detail={"organization": organization_id})


def add_representative(store: Store, ctx: AccessContext, account_id: str, patient_id: str) -> None:
    """Record that a patient account is the legal representative of another patient (a child
    under 7, a ward): the account then reads that patient's record too. Staff admins and operators."""
    if ctx.kind != "operator":
        _staff(ctx, ("admin",), "care.representative")
    with store.writing(INTERNAL) as uow:
        if not index.live_of_type(uow, "Patient", [patient_id], None, 1):
            raise not_found(f"Patient/{patient_id} is not known")
        access.add_representation(uow, account_id, patient_id, ctx.principal, now_us())
        auditing.queued(uow, store, ctx, "care.representative", resource_type="Patient", logical_id=patient_id, compartment=patient_id)


def grant_expiry(store: Store, ctx: AccessContext, patient_id: str) -> int | None:
    """When the context's own unexpired break-glass grant to this patient ends (µs), or None."""
    if ctx.kind != "staff" or not ctx.account_id:
        return None
    now = now_us()
    with store.reading(INTERNAL) as uow:
        ends = [row["expires_at"] for row in access.break_glass_for_patient(uow, patient_id)
                if row["account_id"] == ctx.account_id and row["expires_at"] > now]
    return max(ends) if ends else None
