"""A patient with a realistic record for the health book, written through the services.

The synthetic generator's patient (visits, vital signs, diagnoses, prescriptions, allergies,
vaccinations, a BHYT card), plus what it does not make: laboratory results over time (fasting
glucose, HbA1c with reference ranges), a blood group, one visit recorded the clinic's way (ranked
ICD-10 diagnoses, advice, re-visit appointment), a surgery, a family history, a second dose of a
vaccine and the legal representative. Then an activated patient account (login with the CCCD).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from ehr.fhir import jsonio
from ehr.fhir import visit as v
from ehr.fhir.healthbook import VN
from ehr.fhir.registration import related_person
from ehr.services import accounts, bundles, care, logins, policy, resources, search, signing, visits
from ehr.services.context import AccessContext
from ehr.store import access
from ehr.store.access import INTERNAL
from ehr.store.keys import now_us
from ehr.synthetic.generator import Generator, Scale

OPS = AccessContext.operator("test")
PASSWORD = "đúng-mật-khẩu-9173"
LOINC = "http://loinc.org"
LABS = {  # code: (name, unit, low, high, values over the visits, oldest first)
    "14749-6": ("Glucose lúc đói", "mmol/L", "3.9", "6.4", ["7.8", "7.1", "6.6", "6.0"]),
    "4548-4": ("HbA1c", "%", "4.0", "5.6", ["8.1", "7.4", "6.9", "6.3"]),
}


@dataclass
class Seeded:
    patient_id: str
    cccd: str
    name: str
    facilities: list[str]
    encounters: list[str] = field(default_factory=list)  # newest first
    clinic_visit: str = ""
    bp_readings: int = 0
    lab_points: dict[str, int] = field(default_factory=dict)


def facilities(store: Any, seed: int = 7) -> list[str]:
    generator = Generator(seed=seed, anchor=date.today())
    out = []
    for doc in generator.facility_resources():
        resources.update(store, OPS, doc["resourceType"], doc["id"], doc)
        if doc["resourceType"] == "Organization":
            out.append(doc["id"])
    return out


def _find(store: Any, rtype: str, params: list[tuple[str, str]]) -> list[dict[str, Any]]:
    page = search.search(store, OPS, rtype, [*params, ("_count", "500")])
    return [jsonio.loads_stored(x.body or b"{}") for x, mode in page.entries if mode == "match"]


def _lab(patient_id: str, encounter: dict[str, Any], code: str, value: str) -> dict[str, Any]:
    name, unit, low, high, _ = LABS[code]
    return {
        "resourceType": "Observation", "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
        "code": {"coding": [{"system": LOINC, "code": code}], "text": name},
        "subject": {"reference": f"Patient/{patient_id}"}, "encounter": {"reference": f"Encounter/{encounter['id']}"},
        "effectiveDateTime": encounter["period"]["start"],
        "valueQuantity": {"value": Decimal(value), "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
        "referenceRange": [{"low": {"value": Decimal(low), "unit": unit}, "high": {"value": Decimal(high), "unit": unit}}],
    }


def _bp(patient_id: str, encounter: dict[str, Any], systolic: int, diastolic: int) -> dict[str, Any]:
    def part(code: str, value: int) -> dict[str, Any]:
        return {"code": {"coding": [{"system": LOINC, "code": code}]},
                "valueQuantity": {"value": value, "unit": "mm[Hg]", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}}
    return {
        "resourceType": "Observation", "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
        "code": {"coding": [{"system": LOINC, "code": "85354-9"}], "text": "Blood pressure"},
        "subject": {"reference": f"Patient/{patient_id}"}, "encounter": {"reference": f"Encounter/{encounter['id']}"},
        "effectiveDateTime": encounter["period"]["start"], "component": [part("8480-6", systolic), part("8462-4", diastolic)],
    }


def patient(store: Any, keys: Any, index: int = 0, seed: int = 7, orgs: list[str] | None = None) -> Seeded:
    """A synthetic patient with history, plus one visit recorded and signed the clinic's way
    (`keys`: the app's facility signing keys; the patient sees a visit once it is signed)."""
    orgs = orgs or facilities(store, seed)
    generator = Generator(seed=seed, anchor=date.today())
    bundle = generator.patient_bundle(index, Scale(encounters=4, observations=16, immunizations=3, coverages=1))
    doc = bundle["entry"][0]["resource"]
    responses = bundles.ingest_transaction(store, OPS, bundle)
    pid = str(responses[0].location).split("/")[1]
    seeded = Seeded(pid, doc["identifier"][0]["value"], doc["name"][0]["text"], orgs)
    encounters = sorted(_find(store, "Encounter", [("patient", pid)]), key=lambda e: e["period"]["start"])
    for k, encounter in enumerate(encounters):
        for code, (_, _, _, _, values) in LABS.items():
            resources.create(store, OPS, _lab(pid, encounter, code, values[k % len(values)]))
        resources.create(store, OPS, _bp(pid, encounter, 158 - 6 * k, 96 - 3 * k))
    seeded.lab_points = {code: len(encounters) for code in LABS}
    resources.create(store, OPS, related_person("Nguyễn Văn Hùng", "FTH", "0912 345 678", f"Patient/{pid}"))
    resources.create(store, OPS, {"resourceType": "Procedure", "status": "completed", "subject": {"reference": f"Patient/{pid}"},
                                  "code": {"text": "Cắt ruột thừa nội soi"}, "performedDateTime": "2015-05-20"})
    seeded.clinic_visit = _clinic_visit(store, keys, pid, orgs[0])
    seeded.encounters = [seeded.clinic_visit, *[e["id"] for e in reversed(encounters)]]
    bp = _find(store, "Observation", [("patient", pid), ("code", f"{LOINC}|85354-9")])
    seeded.bp_readings = len(bp)
    return seeded


def _clinic_visit(store: Any, keys: Any, pid: str, org: str) -> str:
    care.record(store, OPS, pid, org)
    doctor = policy.staff_context(str(uuid.uuid4()), org, "doctor")
    started = datetime.now(VN) - timedelta(days=2)
    encounter = visits.record(store, doctor, v.Visit(
        patient_id=pid, organization_id=org, token=str(uuid.uuid4()), started=started, class_code="AMB", class_display="Ngoại trú",
        reason="Tái khám tăng huyết áp, đái tháo đường",
        vitals={"systolic": Decimal(138), "diastolic": Decimal(86), "heart_rate": Decimal(78), "height": Decimal(160), "weight": Decimal(62)},
        blood_group=("LA21321-7", "O Pos"),
        diagnoses=[v.Diagnosis("I10", "Tăng huyết áp vô căn (nguyên phát)"),
                   v.Diagnosis("E11.9", "Bệnh đái tháo đường không phụ thuộc insulin, không có biến chứng")],
        vaccinations=[v.Vaccination("88", "Cúm (influenza)", started.date(), lot="FLU2026")],
        prescriptions=[v.Prescription("Amlodipin 5 mg", Decimal(1), "viên", "26643006", "Đường uống", 1, 30, Decimal(30), "Uống buổi sáng")],
        family=[v.FamilyHistory("MTH", "mother", "Tăng huyết áp")],
        note="Huyết áp còn cao, đường huyết cải thiện.", advice="Ăn nhạt, đi bộ 30 phút mỗi ngày.\nĐo huyết áp mỗi sáng.",
        revisit=(datetime.now(VN) + timedelta(days=28)).date(),
    ))
    signing.sign_visit(store, doctor, keys, encounter)
    return encounter


def context_of(store: Any, patient_id: str) -> AccessContext:
    """The access context a web session of this patient's account gets."""
    with store.reading(INTERNAL) as uow:
        row = access.account_by(uow, patient_id=patient_id)
    assert row is not None
    return accounts.from_row(row).context()


def account(store: Any, seeded: Seeded) -> None:
    """An activated patient account: log in with the CCCD and PASSWORD."""
    code = accounts.create_patient_account(store, OPS, seeded.patient_id, now=now_us())
    outcome = logins.activate(store, seeded.cccd, code, PASSWORD, limits=logins.Limits(), now=now_us(), caller=logins.Caller())
    assert outcome.status == "ok", outcome


_TOKEN = re.compile(r'<input[^>]*name="csrf_token"[^>]*value="([^"]+)"')


def csrf_token(browser: Any, path: str) -> str:
    """The CSRF token of the form on the page at `path` (the test browser of tests/auth)."""
    found = _TOKEN.search(browser.get(path).get_data(as_text=True))
    assert found, "no CSRF token on " + path
    return found.group(1)
