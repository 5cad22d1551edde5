"""Care relationships and emergency (break-glass) access: how staff come to see a patient.

- `check_in`: the patient presents their citizen ID at a facility's desk; staff look the number
  up and the facility starts a care relationship with the patient (audited, shown to the patient).
- `record`: a facility admin records a care relationship for a known patient.
- `break_glass`: a clinician opens a record without consent in an emergency, stating a reason;
  the grant is personal (the clinician's account), time-limited, audited with the reason
  (encrypted under the patient's key) and shown to the patient.

System clients never get care relationships: they read what they wrote and what patients consent to.
"""

from __future__ import annotations

from dataclasses import dataclass

from ehr.crypto.envelope import IntegrityFailure
from ehr.fhir.outcomes import Issue, bad_request, not_found
from ehr.identity.rules import IdentifierError, check_cccd
from ehr.services import auditing, indexing
from ehr.services.context import AccessContext
from ehr.services.policy import Denied
from ehr.store import access, index
from ehr.store.access import INTERNAL
from ehr.store.keys import CompartmentErased, now_us
from ehr.store.runtime import Store

CLINICIANS = ("doctor", "nurse")
BREAK_GLASS_MINUTES = 60
MAX_BREAK_GLASS_MINUTES = 240


def _staff(ctx: AccessContext, roles: tuple[str, ...], action: str) -> str:
    if ctx.kind != "staff" or not ctx.organization or ctx.role not in roles:
        raise Denied(403, [Issue("forbidden", f"{action} is for {', '.join(roles)} staff of a facility")], action)
    return ctx.organization


def check_in(store: Store, ctx: AccessContext, national_id: str) -> str:
    """Find the patient holding this citizen ID and put them in the facility's care; their id."""
    organization = _staff(ctx, ("doctor", "nurse", "receptionist", "admin"), "care.check-in")
    try:
        number = check_cccd(national_id)
    except IdentifierError:
        raise bad_request("not a valid 12-digit citizen ID (CCCD) number", "national_id") from None
    with store.writing(INTERNAL) as uow:
        holders = index.token_holders(uow, "Patient", indexing.NATIONAL_ID, indexing.national_id_token(store, number))
        if len(holders) == 1:
            patient_id = holders[0]
            access.add_care(uow, organization, patient_id, "check-in", now_us())
            auditing.queued(uow, store, ctx, "care.check-in", resource_type="Patient", logical_id=patient_id, compartment=patient_id)
    if len(holders) != 1:
        auditing.event(store, ctx, "care.check-in", "failure")
        raise not_found("no registered patient holds this citizen ID; register the patient")
    return patient_id


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
        access.add_care(uow, organization, patient_id, "admin", now_us())
        auditing.queued(uow, store, ctx, "care.record", resource_type="Patient", logical_id=patient_id, compartment=patient_id)


@dataclass(frozen=True)
class Grant:
    patient_id: str
    expires_at: int  # microseconds since the epoch


def break_glass(store: Store, ctx: AccessContext, patient_id: str, reason: str, minutes: int = BREAK_GLASS_MINUTES) -> Grant:
    """Emergency access for one clinician to one patient, for a limited time, with a reason."""
    organization = _staff(ctx, CLINICIANS, "break-glass")
    if not ctx.account_id:
        raise Denied(403, [Issue("forbidden", "break-glass is personal: sign in with your own account")], "break-glass")
    text = " ".join((reason or "").split())
    if len(text) < 10:
        raise bad_request("state the emergency reason (at least 10 characters)", "reason")
    if not 1 <= minutes <= MAX_BREAK_GLASS_MINUTES:
        raise bad_request(f"break-glass lasts 1 to {MAX_BREAK_GLASS_MINUTES} minutes", "minutes")
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
