"""The Practitioner and PractitionerRole of each clinic staff account.

Every staff account is a person working at one facility: in FHIR a Practitioner (name, practising
licence number, chứng chỉ hành nghề) and a PractitionerRole (that practitioner, the facility's
Organization and the role: Bác sĩ, Điều dưỡng, Lễ tân, Quản trị). Visits, signatures and Provenance
name these instead of an opaque account id.

They are made on first use (`for_account`), through the normal write services:

- with the staff member's own context (their principal in the audit trail, their facility as the
  owner: directory types are readable by everyone and changed only by the facility that wrote
  them), its scopes widened by exactly the create of these two types, since nurses and
  receptionists may not otherwise write directory entries;
- both carry the identifier `{identifier base}/staff-account|<account id>`, and both are
  written, with their ids in the account's row, in one transaction under a write lock of the
  account: two first uses at once make one Practitioner and one PractitionerRole (the second
  waits, then finds the first's ids). Later calls read one row and write nothing.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from typing import Any

from ehr.services import accounts, policy
from ehr.services import resources as resource_service
from ehr.services.context import AccessContext
from ehr.store import access, repository
from ehr.store.access import INTERNAL
from ehr.store.runtime import Store

ACCOUNT_SYSTEM_PATH = "staff-account"  # identifier of the account behind a Practitioner / PractitionerRole
ROLE_SYSTEM_PATH = "staff-role"  # this server's staff roles as a code system
ROLE_NAMES = {"doctor": "Bác sĩ", "nurse": "Điều dưỡng", "receptionist": "Lễ tân", "admin": "Quản trị"}
# The HL7 practitioner-role codes where one exists, so other systems recognise clinicians.
_HL7_ROLE = "http://terminology.hl7.org/CodeSystem/practitioner-role"
_HL7_CODES = {"doctor": ("doctor", "Doctor"), "nurse": ("nurse", "Nurse")}
_WRITE_SCOPES = frozenset({"user/Practitioner.c", "user/PractitionerRole.c"})


@dataclass(frozen=True)
class Clinician:
    practitioner_id: str  # Practitioner/<id>: the bare <id> (callers write f"Practitioner/{practitioner_id}")
    role_id: str  # PractitionerRole/<id> (practitioner + organization + role code): the bare <id>
    name: str  # the account's display name, with diacritics
    licence: str | None  # practising-licence number (chứng chỉ hành nghề), if recorded


def account_system(store: Store) -> str:
    return f"{store.systems.base.rstrip('/')}/{ACCOUNT_SYSTEM_PATH}"


def role_code(store: Store, role: str) -> dict[str, Any]:
    """PractitionerRole.code of a staff role, Vietnamese display."""
    codings = [{"system": f"{store.systems.base.rstrip('/')}/{ROLE_SYSTEM_PATH}", "code": role, "display": ROLE_NAMES.get(role, role)}]
    if role in _HL7_CODES:
        codings.append({"system": _HL7_ROLE, "code": _HL7_CODES[role][0], "display": _HL7_CODES[role][1]})
    return {"coding": codings, "text": ROLE_NAMES.get(role, role)}


def for_account(store: Store, ctx: AccessContext) -> Clinician | None:
    """The signed-in staff member's Practitioner and PractitionerRole, made on first use.

    None for anyone but staff, and for a staff context without an account on this server (a
    context built by hand has no name to give a Practitioner)."""
    if ctx.kind != "staff" or not ctx.account_id:
        return None
    with store.reading(INTERNAL) as uow:
        row = access.account_by(uow, account_id=ctx.account_id, kind="staff")
        if row is None or not row["organization_id"]:
            return None
        key = accounts.shared_key(uow, store.keys)
        name = accounts.unseal(key, row["account_id"], row["display_name"], "display_name") if row["display_name"] else ""
        licence = accounts.licence_of(key, row)
    if row["practitioner_id"] and row["practitioner_role_id"]:
        return Clinician(row["practitioner_id"], row["practitioner_role_id"], name, licence)
    return _create(store, ctx, row, name, licence)


def _create(store: Store, ctx: AccessContext, row: dict[str, Any], name: str, licence: str | None) -> Clinician:
    account_id, organization_id, role = row["account_id"], row["organization_id"], row["role"]
    # The account's own principal, acting for its own facility (the owner of both entries).
    writer = dataclasses.replace(ctx, organization=organization_id, scopes=ctx.scopes | _WRITE_SCOPES)
    for resource_type in ("Practitioner", "PractitionerRole"):
        resource_service.check_writable(writer, "create", resource_type)
    own = {"system": account_system(store), "value": account_id}
    identifiers = [own]
    if licence:
        identifiers.append({"system": store.systems.practitioner_licence, "value": licence, "type": {"text": "Chứng chỉ hành nghề"}})
    practitioner_id, role_id = str(uuid.uuid4()), str(uuid.uuid4())
    practitioner = {"resourceType": "Practitioner", "active": True, "identifier": identifiers, "name": [{"text": name or account_id}]}
    reference = {"reference": f"Practitioner/{practitioner_id}", **({"display": name} if name else {})}
    practitioner_role = {
        "resourceType": "PractitionerRole", "active": True, "identifier": [own], "practitioner": reference,
        "organization": {"reference": f"Organization/{organization_id}"}, "code": [role_code(store, role)],
    }
    # Validated before the transaction (the slow part), written in one transaction.
    prepared = (resource_service.prepare_write(store, practitioner, "Practitioner", practitioner_id),
                resource_service.prepare_write(store, practitioner_role, "PractitionerRole", role_id))
    with store.writing(policy.gate(writer)) as uow:
        # One first use at a time per account: a second one waits here, then finds the first's ids.
        repository.lock(uow, [store.blind.lock_key("Practitioner", "staff-account", account_id)])
        current = access.account_by(uow, account_id=account_id)
        if current and current["practitioner_id"] and current["practitioner_role_id"]:
            return Clinician(current["practitioner_id"], current["practitioner_role_id"], name, licence)
        resource_service.create_in(uow, store, prepared[0], "Practitioner", practitioner_id, None)
        resource_service.create_in(uow, store, prepared[1], "PractitionerRole", role_id, None)
        access.update_account(uow, account_id, practitioner_id=practitioner_id, practitioner_role_id=role_id)
        resource_service.flush_writes(uow)
    return Clinician(practitioner_id, role_id, name, licence)
