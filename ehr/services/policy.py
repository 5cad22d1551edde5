"""The authorization policy: the single place every service call asks "may this context do this?".

Deny by default. Two questions, answered here and nowhere else:

1. Interaction on a type (`authorize`): the context's SMART v2 scopes must grant it. Staff and
   patients get scopes from their role (`ROLE_SCOPES`); system clients from their token.
2. Which records (`gate`): a `Gate` whose restriction every store query adds to its SQL:
   - patients: their own compartment and those of the patients they represent;
   - staff: patients in their facility's care, patients with an active Consent naming the facility,
     plus unexpired break-glass grants of their own;
   - system clients: what their organization wrote, plus patients with an active Consent naming
     the organization (or any organization) for the moment and the client's purpose of use.
   Writes never widen access: a write must land in a record the context can already see, and only
   patients and clinic staff write Consent (a client cannot grant itself access).

Denials of records answer exactly like records that do not exist (404, same body): a caller
cannot learn that another patient's resource is there. Denials of a whole interaction (no scope)
answer 403, which discloses nothing about any record.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from ehr.fhir.compartment import CONFORMANCE_TYPES, SHARED_TYPES
from ehr.fhir.outcomes import FhirError, Issue
from ehr.services.context import AccessContext
from ehr.store import access
from ehr.store.access import Gate, Restriction
from ehr.store.keys import now_us
from ehr.store.schema import resources
from ehr.store.uow import UnitOfWork

# interaction -> SMART v2 permission letter
_LETTER = {"create": "c", "read": "r", "vread": "r", "history": "r", "search": "s", "update": "u", "patch": "u", "delete": "d"}
_ORDER = "cruds"

# Types a facility's front desk works with (registration, visits, insurance, consent).
_FRONT_DESK = ("Patient", "Encounter", "Coverage", "RelatedPerson", "Consent", "Appointment")
_DIRECTORY = ("Organization", "Practitioner", "PractitionerRole", "Location", "Medication")
# What nurses record (vital signs, allergies, vaccinations, nursing notes); doctors record everything
# (diagnoses, prescriptions, signed notes).
_NURSING = ("Observation", "Immunization", "AllergyIntolerance", "Encounter", "Patient", "Procedure", "Consent", "Composition")

ROLE_SCOPES: dict[str, frozenset[str]] = {
    "doctor": frozenset({"user/*.cruds"}),
    "nurse": frozenset({"user/*.rs", *(f"user/{t}.cru" for t in _NURSING)}),
    "receptionist": frozenset({*(f"user/{t}.crus" for t in _FRONT_DESK), *(f"user/{t}.rs" for t in _DIRECTORY)}),
    # Facility admins also answer patients' data requests (Task, see services/data_requests.py).
    "admin": frozenset({"user/Patient.rs", "user/AuditEvent.rs", "user/Task.rus", *(f"user/{t}.crus" for t in _DIRECTORY)}),
    "patient": frozenset({"patient/*.rs", "patient/Consent.cru"}),
}

# Consent is the patient's own act: it is written in the health book or recorded by clinic staff
# from a signed form, never by a system client (which could otherwise grant itself access).
_PERSON_WRITTEN = frozenset({"Consent"})


_denials: ContextVar[list[Denied] | None] = ContextVar("ehr_denials", default=None)


class Denied(FhirError):
    """A refusal decided by the policy.

    Every refusal made while a request collects them (`collect_denials`) is remembered, even when
    a caller turns it into something else (a batch entry's outcome, a transaction's error), so
    the HTTP edge can write one audit record per denial before the response leaves.
    """

    def __init__(self, status: int, issues: list[Issue], action: str, resource_type: str | None = None,
                 logical_id: str | None = None, compartment: str | None = None) -> None:
        super().__init__(status, issues, {})
        self.action = action
        self.resource_type = resource_type
        self.logical_id = logical_id
        self.compartment = compartment
        collected = _denials.get()
        if collected is not None:
            collected.append(self)


def collect_denials() -> list[Denied]:
    """Start collecting the denials of this request (or task); returns the live list."""
    collected: list[Denied] = []
    _denials.set(collected)
    return collected


def not_visible(action: str, resource_type: str, logical_id: str | None, message: str | None = None,
                compartment: str | None = None) -> Denied:
    """A record the context may not see: the same answer as a record that is not there."""
    text = message or f"{resource_type}/{logical_id} is not known"
    return Denied(404, [Issue("not-found", text)], action, resource_type, logical_id, compartment)


def parse_scope(scope: str) -> tuple[str, str, str] | None:
    """(context, type, permission letters) of a SMART scope, or None when it is not one.

    SMART v2 letters must come in the order c r u d s (`.dus` is refused); the v1 spellings
    `.read`, `.write` and `.*` are accepted and translated.
    """
    try:
        context, rest = scope.split("/", 1)
        rtype, perms = rest.split(".", 1)
    except ValueError:
        return None
    if context not in ("system", "user", "patient") or not rtype:
        return None
    perms = {"read": "rs", "write": "cud", "*": "cruds"}.get(perms, perms)
    if not perms or any(ch not in _ORDER for ch in perms) or list(perms) != sorted(set(perms), key=_ORDER.index):
        return None
    return context, rtype, perms


def _granted(scope: str, resource_type: str, letter: str) -> bool:
    parsed = parse_scope(scope)
    if parsed is None:
        return False
    _context, rtype, perms = parsed
    return rtype in ("*", resource_type) and letter in perms


def scopes_for_role(role: str | None) -> frozenset[str]:
    return ROLE_SCOPES.get(role or "", frozenset())


def staff_context(account_id: str, organization: str, role: str, request_id: str | None = None,
                  source_hash: bytes | None = None) -> AccessContext:
    """A signed-in staff member: scopes from the role, records of the facility's care."""
    return AccessContext(
        principal=f"staff:{account_id}", kind="staff", organization=organization, role=role, account_id=account_id,
        scopes=scopes_for_role(role), request_id=request_id, source_hash=source_hash,
    )


def patient_context(account_id: str, patient_id: str, request_id: str | None = None, source_hash: bytes | None = None) -> AccessContext:
    """A signed-in patient: their own record (and those they represent), read-only but Consent."""
    return AccessContext(
        principal=f"patient:{account_id}", kind="patient", on_behalf_of=patient_id, role="patient", account_id=account_id,
        scopes=scopes_for_role("patient"), request_id=request_id, source_hash=source_hash,
    )


def authorize(ctx: AccessContext, interaction: str, resource_type: str) -> None:
    """Raise 403 unless the context may perform `interaction` on `resource_type`."""
    if ctx.kind == "server":
        return
    letter = _LETTER.get(interaction)
    allowed = letter is not None and any(_granted(s, resource_type, letter) for s in ctx.scopes)
    if allowed and letter in "cud" and resource_type in _PERSON_WRITTEN and ctx.kind == "system":
        allowed = False
    if not allowed:
        raise Denied(403, [Issue("forbidden", f"not permitted: {interaction} on {resource_type}")], interaction, resource_type)


def may(ctx: AccessContext, interaction: str, resource_type: str) -> bool:
    try:
        authorize(ctx, interaction, resource_type)
    except Denied:
        return False
    return True


def gate(ctx: AccessContext) -> Gate:
    """The records this context may see, as a store gate (no database lookup needed)."""
    if ctx.unrestricted:
        return Gate(None, creator_org=ctx.organization, context=ctx)
    now = now_us()
    shared = SHARED_TYPES
    if ctx.kind == "patient" and ctx.on_behalf_of:
        restriction = Restriction(
            patients=(ctx.on_behalf_of,), representative=ctx.account_id, purpose=ctx.purpose, now_us=now, shared_types=shared,
        )
        return Gate(restriction, context=ctx)
    if ctx.kind == "staff" and ctx.organization:
        restriction = Restriction(
            care_org=ctx.organization, break_glass_account=ctx.account_id, consent_org=ctx.organization, purpose=ctx.purpose, now_us=now,
            shared_types=shared, private_org=ctx.organization,
        )
        return Gate(restriction, creator_org=ctx.organization, care_org_on_register=ctx.organization, context=ctx)
    if ctx.kind == "system" and ctx.organization:
        restriction = Restriction(
            created_by_org=ctx.organization, consent_org=ctx.organization, purpose=ctx.purpose, now_us=now, shared_types=shared,
        )
        return Gate(restriction, creator_org=ctx.organization, context=ctx)
    return Gate(Restriction(shared=False), context=ctx)  # an unknown kind of principal sees nothing


def patient_visible(uow: UnitOfWork, gate_: Gate, patient_id: str) -> bool:
    """May the gate see the patient's record (the Patient resource itself)?"""
    if gate_.restriction is None:
        return True
    row = uow.execute(
        resources.select().with_only_columns(resources.c.created_by_org).where(resources.c.resource_type == "Patient", resources.c.logical_id == patient_id)
    ).first()
    if row is None:
        return False
    return access.row_visible(uow, gate_.restriction, patient_id, row[0], "Patient")


def check_write_target(
    uow: UnitOfWork, resource_type: str, logical_id: str, compartment: str | None, previous: Any, action: str
) -> None:
    """A write must replace something the context sees and may change, and land in a record it sees.

    `previous` is the current row (or None for a create). A new Patient is its own new record.
    Visibility is checked first, so a hidden resource answers 404 before ownership can say 403.
    """
    gate_: Gate = uow.access
    if gate_.restriction is None:
        return
    if previous is not None and not access.row_visible(uow, gate_.restriction, previous.compartment, previous.created_by_org, resource_type):
        raise not_visible(action, resource_type, logical_id, compartment=previous.compartment)
    if previous is not None and not previous.deleted and previous.compartment != compartment:
        # Changing the subject would move another facility's record into a patient the writer
        # chose (and re-encrypt it there). Corrections of that kind are a new resource, or $merge.
        raise Denied(422, [Issue("business-rule", "a resource cannot be moved to another patient's record; "
                                 "create a new resource for the right patient")], action, resource_type, logical_id, compartment)
    check_may_change(uow, gate_.context, resource_type, logical_id, previous, action)
    if compartment is None:
        if not gate_.restriction.shared:
            raise not_visible(action, resource_type, logical_id)
        return
    if resource_type == "Patient" and compartment == logical_id and previous is None:
        return
    if compartment != logical_id or resource_type != "Patient":
        if not patient_visible(uow, gate_, compartment):
            # Like a reference to a resource that does not exist (422): nothing about it leaks.
            issue = Issue("business-rule", "the referenced resource does not exist on this server")
            raise Denied(422, [issue], action, resource_type, logical_id, compartment)


def _forbidden(action: str, resource_type: str, logical_id: str | None, text: str) -> Denied:
    return Denied(403, [Issue("forbidden", text)], action, resource_type, logical_id)


def check_may_change(uow: UnitOfWork, ctx: AccessContext | None, resource_type: str, logical_id: str, previous: Any, action: str) -> None:
    """Who may create, change or delete which resource (the resource is already known visible).

    - Conformance and terminology artifacts (and NamingSystems): operators only.
    - A resource that exists: only the organization that wrote it. Reading rights (care,
      consent, break-glass) never give the right to change or delete another's record; others
      amend by writing a new resource that references it.
    - A Patient's demographics: also the facilities that have the patient in their care.
    - An Organization: also the organization itself (its name and facility code stay an operator's).
    - Patients (and their representatives) change only Consents in their own record.
    """
    if ctx is None or ctx.unrestricted:
        return
    if resource_type in CONFORMANCE_TYPES:
        raise _forbidden(action, resource_type, logical_id, f"{resource_type} resources are maintained by the operators of this server")
    if previous is None or previous.deleted:
        return  # a create (or a re-create after a delete): landing rules are checked by the caller
    if ctx.kind == "patient":
        if resource_type == "Consent":
            return
        raise _forbidden(action, resource_type, logical_id, "patients change only their consents")
    org = ctx.organization
    if org is not None and previous.created_by_org == org:
        return
    if resource_type == "Organization" and org is not None and logical_id == org and action != "delete":
        return
    if resource_type == "Patient" and org is not None and action != "delete" and access.in_care(uow, org, logical_id, now_us()):
        return
    raise _forbidden(action, resource_type, logical_id,
                     "only the organization that wrote this resource may change or delete it; record an amendment as a new resource")


_MERGE_REFUSED = ("merging patient records is done by an operator, or by a facility admin for two records both in the "
                  "facility's care")


def check_merge_role(ctx: AccessContext) -> None:
    """$merge is an operator's (with a Patient update scope) or a facility admin's, nobody else's."""
    if ctx.unrestricted:
        authorize(ctx, "update", "Patient")
    elif not (ctx.kind == "staff" and ctx.role == "admin" and ctx.organization):
        raise _forbidden("merge", "Patient", None, _MERGE_REFUSED)


def may_merge(uow: UnitOfWork, ctx: AccessContext, source_id: str, target_id: str) -> None:
    """$merge rewrites two records: operators, or a facility admin whose facility has both in care."""
    if ctx.unrestricted:
        return
    if ctx.kind == "staff" and ctx.role == "admin" and ctx.organization:
        if access.in_care(uow, ctx.organization, source_id, now_us()) and access.in_care(uow, ctx.organization, target_id, now_us()):
            return
    raise _forbidden("merge", "Patient", None, _MERGE_REFUSED)
