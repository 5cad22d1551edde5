"""The world of the authorization matrix (see policy-table.txt), built through the services as
the real principals: hospitals with real tokens, staff and patients with their contexts."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from access_helpers import OPS, register, token
from ehr.services import care, clients, resources
from ehr.services.context import AccessContext
from ehr.services.policy import patient_context, staff_context

TABLE = Path(__file__).with_name("policy-table.txt")
CCCD = {"A": "079090000111", "B": "001085000222"}
CODES = {"A.f1": "8867-4", "A.h3": "8310-5", "B.fb": "9279-1"}  # each slice's Observation code
FACILITY_F1, FACILITY_FB = "01001", "01002"  # facility codes (mã cơ sở KCB), set by an operator


@dataclass(frozen=True)
class Row:
    principal: str
    types: frozenset[str]  # {"*"} or type names
    sees: frozenset[str]
    writes: frozenset[str]
    changes: frozenset[str]


def policy_table() -> dict[str, Row]:
    rows = {}
    for line in TABLE.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, types, sees, writes, changes = (part.strip() for part in line.split("|"))
        words = lambda text: frozenset(w for w in text.replace(",", " ").split() if w != "-")  # noqa: E731
        rows[name] = Row(name, words(types), words(sees), words(writes), words(changes))
    return rows


@dataclass
class World:
    ids: dict[str, str] = field(default_factory=dict)  # slice -> logical id ("A.pat" -> Patient id)
    canary: dict[str, str] = field(default_factory=dict)  # slice -> canary text planted in it
    contexts: dict[str, AccessContext] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)  # system principals -> bearer token

    def patient(self, x: str) -> str:
        return self.ids[f"{x}.pat"]


def _instant(delta_days: int) -> str:
    return (datetime.now(timezone.utc) + timedelta(days=delta_days)).isoformat(timespec="seconds")


def _patient(store: Any, x: str, canary: str, birth: str, gender: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient", "gender": gender, "birthDate": birth,
        "identifier": [{"system": store.systems.cccd, "value": CCCD[x]}],
        "name": [{"text": f"Trần Thị {canary}", "family": "Trần", "given": ["Thị", canary]}],
    }


def _observation(patient_id: str, code: str, canary: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": f"Patient/{patient_id}"}, "effectiveDateTime": _instant(-1),
        "valueString": canary,
    }


def consent(patient_id: str, organizations: list[str], status: str = "active", period: tuple[int, int] = (-1, 30)) -> dict[str, Any]:
    return {
        "resourceType": "Consent", "status": status, "dateTime": _instant(-2),
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{patient_id}"},
        "performer": [{"reference": f"Patient/{patient_id}"}],
        "policy": [{"uri": "https://fhir.ehr-vn.org/consent-text/share-records/v1"}],
        "provision": {
            "type": "permit",
            "period": {"start": _instant(period[0]), "end": _instant(period[1])},
            "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT"}],
            **({"actor": [
                {"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}]},
                 "reference": {"reference": f"Organization/{org}"}}
                for org in organizations
            ]} if organizations else {}),  # no actor: every organization
        },
    }


def build(client: Any, store: Any) -> World:
    w = World()
    orgs = ["F1", "FB", "F2", "F3", "F4", "F5", "H1", "H2", "H3", "H4", "H5"]
    for org in orgs:
        doc = {"resourceType": "Organization", "id": f"org-{org.lower()}", "name": f"Cơ sở {org}"}
        if org in ("F1", "FB"):
            doc["identifier"] = [{"system": store.systems.facility, "value": FACILITY_F1 if org == "F1" else FACILITY_FB}]
        resources.update(store, OPS, "Organization", f"org-{org.lower()}", doc)
    resources.update(store, OPS, "NamingSystem", "ns-bhyt", {
        "resourceType": "NamingSystem", "id": "ns-bhyt", "name": "BHYT", "status": "active", "kind": "identifier", "date": "2026-01-01",
        "uniqueId": [{"type": "uri", "value": "https://fhir.ehr-vn.org/sid/bhyt"}]})
    org = {o: f"org-{o.lower()}" for o in orgs}
    for name, (org_key, scopes) in {
        "system_h1_consent": ("H1", ["system/*.cruds"]), "system_h2_none": ("H2", ["system/*.cruds"]),
        "system_h4_revoked": ("H4", ["system/*.cruds"]), "system_h5_expired": ("H5", ["system/*.cruds"]),
        "system_h1_noscope": ("H1", ["system/Organization.rs"]), "system_h3_partial": ("H3", ["system/*.cruds"]),
    }.items():
        hospital = register(store, name.replace("_", "-"), org[org_key], scopes)
        w.tokens[name] = token(client, hospital, " ".join(scopes))
        resolved = clients.resolve(store, w.tokens[name], None, None)
        assert resolved is not None
        w.contexts[name] = resolved
    for name, (org_key, role) in {
        "doctor_f1": ("F1", "doctor"), "receptionist_f1": ("F1", "receptionist"), "admin_f1": ("F1", "admin"), "doctor_fb": ("FB", "doctor"),
        "doctor_f2_consent": ("F2", "doctor"), "doctor_f3_none": ("F3", "doctor"), "doctor_f4_revoked": ("F4", "doctor"),
        "doctor_f5_expired": ("F5", "doctor"), "doctor_f3_glass": ("F3", "doctor"),
    }.items():
        w.contexts[name] = staff_context(f"acct-{name}", org[org_key], role)
    for s in ("A.pat", "A.f1", "A.h3", "B.pat", "B.fb", "G.pat"):
        w.canary[s] = f"CANARY{uuid.uuid4().hex[:10].upper()}"
    c = w.contexts
    # A: registered by H3's system, which also writes one Observation; then in F1's care (an operator records it).
    w.ids["A.pat"] = resources.create(store, c["system_h3_partial"], _patient(store, "A", w.canary["A.pat"], "1990-03-04", "female")).version.logical_id
    w.ids["A.h3"] = resources.create(store, c["system_h3_partial"], _observation(w.ids["A.pat"], CODES["A.h3"], w.canary["A.h3"])).version.logical_id
    care.record(store, OPS, w.ids["A.pat"], org["F1"])
    w.ids["A.f1"] = resources.create(store, c["doctor_f1"], _observation(w.ids["A.pat"], CODES["A.f1"], w.canary["A.f1"])).version.logical_id
    # B: registered at FB (registration starts FB's care).
    w.ids["B.pat"] = resources.create(store, c["doctor_fb"], _patient(store, "B", w.canary["B.pat"], "1985-07-08", "male")).version.logical_id
    w.ids["B.fb"] = resources.create(store, c["doctor_fb"], _observation(w.ids["B.pat"], CODES["B.fb"], w.canary["B.fb"])).version.logical_id
    # C: a second record at F1 (no canary), where moves and merges would take A's data.
    w.ids["C.pat"] = resources.create(store, c["doctor_f1"], {"resourceType": "Patient", "name": [{"text": "Bản ghi C"}]}).version.logical_id
    w.ids["grp"] = resources.create(store, c["doctor_f1"], {
        "resourceType": "Group", "type": "person", "actual": True, "member": [{"entity": {"reference": f"Patient/{w.ids['A.pat']}"}}]}).version.logical_id
    # G: the guardian's own record, registered by an operator; the guardian represents A.
    w.ids["G.pat"] = resources.create(store, OPS, {"resourceType": "Patient", "name": [{"text": w.canary["G.pat"]}]}).version.logical_id
    c["patient_a"] = patient_context("acct-a", w.ids["A.pat"])
    c["patient_b"] = patient_context("acct-b", w.ids["B.pat"])
    c["guardian_of_a"] = patient_context("acct-g", w.ids["G.pat"])
    care.add_representative(store, OPS, "acct-g", w.ids["A.pat"])
    # A's consents, written by A in the health book.
    a = w.ids["A.pat"]
    resources.create(store, c["patient_a"], consent(a, [org["F2"], org["H1"]]))
    resources.create(store, c["patient_a"], consent(a, [org["F4"], org["H4"]], status="inactive"))
    resources.create(store, c["patient_a"], consent(a, [org["F5"], org["H5"]], period=(-60, -1)))
    care.break_glass(store, c["doctor_f3_glass"], a, "bệnh nhân bất tỉnh, cần xem tiền sử dị ứng")
    return w
