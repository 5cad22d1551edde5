"""Audit rows as FHIR R4 AuditEvents, in the shape of IHE Basic Audit Log Patterns (BALP).

Pure: a dict of the row in, a resource dict out. The row carries ids only; so does the event:
agents are principals (`staff:<account>`, `system:<client>`, `patient:<account>`) with their
organization, entities are the patient and the resource, the request id links to logs.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

BALP = "https://profiles.ihe.net/ITI/BALP/StructureDefinition"
REST = {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest", "display": "RESTful Operation"}
DCM = "http://dicom.nema.org/resources/ontology/DCM"
INTERACTION = "http://hl7.org/fhir/restful-interaction"
PRINCIPAL = "urn:ehr-vn:principal"

# action -> (type, subtype code or None, CRUDE action, BALP profile)
_KINDS: dict[str, tuple[dict[str, str], str | None, str, str]] = {
    "read": (REST, "read", "R", "IHE.BasicAudit.PatientRead"),
    "vread": (REST, "vread", "R", "IHE.BasicAudit.PatientRead"),
    "history": (REST, "history-instance", "R", "IHE.BasicAudit.PatientRead"),
    "search": (REST, "search-type", "E", "IHE.BasicAudit.PatientQuery"),
    "everything": (REST, "operation", "E", "IHE.BasicAudit.PatientQuery"),
    "match": (REST, "operation", "E", "IHE.BasicAudit.PatientQuery"),
    "export": (REST, "operation", "E", "IHE.BasicAudit.PatientQuery"),
    "export.start": (REST, "operation", "E", "IHE.BasicAudit.Query"),
    "export.download": (REST, "operation", "R", "IHE.BasicAudit.Read"),
    "create": (REST, "create", "C", "IHE.BasicAudit.PatientCreate"),
    "update": (REST, "update", "U", "IHE.BasicAudit.PatientUpdate"),
    "patch": (REST, "patch", "U", "IHE.BasicAudit.PatientUpdate"),
    "delete": (REST, "delete", "D", "IHE.BasicAudit.PatientDelete"),
    "login": ({"system": DCM, "code": "110114", "display": "User Authentication"}, None, "E", "IHE.BasicAudit.Login"),
    "logout": ({"system": DCM, "code": "110114", "display": "User Authentication"}, None, "E", "IHE.BasicAudit.Logout"),
    "authenticate": ({"system": DCM, "code": "110114", "display": "User Authentication"}, None, "E", "IHE.BasicAudit.Login"),
    "token.issue": ({"system": DCM, "code": "110114", "display": "User Authentication"}, None, "E", "IHE.BasicAudit.SAMLaccessTokenUse.Minimal"),
    "break-glass": ({"system": DCM, "code": "110113", "display": "Security Alert"}, None, "E", "IHE.BasicAudit.PatientRead"),
}
_OUTCOME = {"success": "0", "failure": "4", "denied": "4", "refused": "4", "error": "8"}


def _instant(us: int) -> str:
    return datetime.fromtimestamp(us / 1_000_000, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _agent_type(principal: str) -> dict[str, Any]:
    kind = principal.split(":", 1)[0]
    code = {"system": "110150", "staff": "110153", "patient": "110153"}.get(kind, "110150")  # application / source role id
    return {"coding": [{"system": DCM, "code": code}]}


def to_fhir(row: dict[str, Any], server_name: str = "ehr-vn") -> dict[str, Any]:
    kind, subtype, action, profile = _KINDS.get(
        row["action"], ({"system": "https://fhir.ehr-vn.org/CodeSystem/audit-action", "code": row["action"]}, None, "E", "IHE.BasicAudit.Query")
    )
    agent: dict[str, Any] = {
        "type": _agent_type(row["principal"]),
        "who": {"identifier": {"system": PRINCIPAL, "value": row["principal"]}},
        "requestor": True,
    }
    if row.get("purpose"):
        agent["purposeOfUse"] = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": row["purpose"]}]}]
    agents = [agent]
    if row.get("organization"):
        agents.append({
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleClass", "code": "PROV", "display": "healthcare provider"}]},
            "who": {"reference": f"Organization/{row['organization']}"}, "requestor": False,
        })
    entities: list[dict[str, Any]] = []
    patients = sorted({*(row.get("patients") or "").split(), *([row["compartment"]] if row.get("compartment") else [])})
    reason = (row.get("detail") or {}).get("reason") if row["action"] == "break-glass" else None
    basis = (row.get("detail") or {}).get("basis") if row["action"] == "care.check-in" else None
    for patient_id in patients:
        entity: dict[str, Any] = {"what": {"reference": f"Patient/{patient_id}"},
                                  "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1"},
                                  "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1"}}
        if reason:
            entity["detail"] = [{"type": "emergency-reason", "valueString": reason}]  # shown to the patient
        if basis:
            entity["detail"] = [{"type": "care-basis", "valueString": basis}]  # consent or break-glass: highlighted
        entities.append(entity)
    if row.get("resource_type") and row.get("logical_id") and row["resource_type"] != "Patient":
        entities.append({"what": {"reference": f"{row['resource_type']}/{row['logical_id']}"},
                         "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2"},
                         "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "4"}})
    elif row.get("resource_type") and not row.get("logical_id"):
        entities.append({"what": {"display": row["resource_type"]}, "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2"},
                         "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "24"}})  # query
    if row.get("request_id"):
        entities.append({"what": {"identifier": {"value": row["request_id"]}},
                         "type": {"system": "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType", "code": "XrequestId"}})
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": str(row["seq"]),
        "meta": {"profile": [f"{BALP}/{profile}"]},
        "type": kind,
        "action": action,
        "recorded": _instant(row["recorded_at"]),
        "outcome": _OUTCOME.get(row["outcome"], "4"),
        "agent": agents,
        "source": {"observer": {"display": server_name},
                   "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "4", "display": "Application Server"}]},
    }
    if subtype:
        event["subtype"] = [{"system": INTERACTION, "code": subtype}]
    if row["outcome"] != "success":
        event["outcomeDesc"] = row["outcome"]
    if row.get("purpose"):
        event["purposeOfEvent"] = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": row["purpose"]}]}]
    if entities:
        event["entity"] = entities
    return event
