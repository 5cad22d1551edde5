"""A clinic visit as standard FHIR R4 resources, built as one transaction Bundle.

Pure functions: the input is a checked `Visit`; the output a `transaction` Bundle whose entries
reference each other by `urn:uuid:` and whose every entry is a conditional create on a business
identifier derived from the form's submission token. Submitting the same form twice therefore
writes nothing the second time, even when both submissions race (conditional creates lock their
identifier).

Codes: vital signs per the FHIR vital-signs profile (LOINC, UCUM); diagnoses ICD-10 (the main
diagnosis first, `Encounter.diagnosis.rank` 1); blood group LOINC 882-1; the visit summary a
Composition (LOINC 34133-9) with the clinical note and the advice; the re-visit an Appointment.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from ehr.fhir import corrections
from ehr.fhir.terminology import ACT_CODE, ALLERGY_CLINICAL, ALLERGY_VERIFICATION, CONDITION_CATEGORY, CONDITION_CLINICAL
from ehr.fhir.terminology import CONDITION_VERIFICATION, ICD10, LOINC, OBSERVATION_CATEGORY, UCUM, VITAL_SIGNS

ITEM_SYSTEM_PATH = "visit-item"  # identifier system suffix: <base>/visit-item, value <token>/<item>
DIAGNOSIS_ROLE = "http://terminology.hl7.org/CodeSystem/diagnosis-role"
CVX = "http://hl7.org/fhir/sid/cvx"
ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
ACT_SITE = "http://terminology.hl7.org/CodeSystem/v3-ActSite"
PERFORMER_FUNCTION = "http://terminology.hl7.org/CodeSystem/v2-0443"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
SNOMED = "http://snomed.info/sct"
ASSOCIATED_ENCOUNTER = "http://hl7.org/fhir/StructureDefinition/encounter-associatedEncounter"
BLOOD_GROUP_LOINC = "882-1"
_SINGLE_IDENTIFIER = frozenset({"Composition"})  # 0..1 identifier in R4


@dataclass(frozen=True)
class Diagnosis:
    code: str  # ICD-10, checked
    display: str
    # The patient's active Condition with this code, if any: the visit references it instead of
    # writing the same problem again (one problem list per patient).
    existing_id: str | None = None
    version: str | None = None  # the list the code was taken from (e.g. "QĐ 4469/2020")


@dataclass(frozen=True)
class Allergy:
    substance: str
    criticality: str | None = None  # low | high | unable-to-assess
    reaction: str | None = None


@dataclass(frozen=True)
class Vaccination:
    cvx: str
    display: str
    occurred: date
    lot: str | None = None
    site: str | None = None  # v3-ActSite code (SNOMED CT for the mouth)
    site_display: str | None = None
    site_system: str = ACT_SITE


@dataclass(frozen=True)
class CodedDrug:
    """A drug chosen from the clinic's drug catalogue (its code in the catalogue's version)."""
    system: str
    code: str
    display: str
    version: str | None = None
    ingredient: str | None = None  # active ingredient name
    ingredient_code: str | None = None  # MoH active-ingredient code (MA_THUOC)
    ingredient_system: str | None = None


@dataclass(frozen=True)
class DrugIssue:
    """A prescribing warning the clinician overrode: a DetectedIssue in the record."""
    code: str  # v3-ActCode: ALGY | DUPTHPY | DOSEDURH | DOSE
    display: str
    detail: str
    implicated: str | None = None  # "AllergyIntolerance/<id>" or "MedicationRequest/<id>"
    severity: str = "high"


@dataclass(frozen=True)
class Override:
    """Why the clinician prescribes despite the warnings (5-500 characters), and the warnings."""
    reason: str
    issues: tuple[DrugIssue, ...] = ()


@dataclass(frozen=True)
class Prescription:
    drug: str
    dose_value: Decimal | None
    dose_unit: str | None
    route: str | None  # SNOMED CT route code
    route_display: str | None
    frequency: int  # times per day
    duration_days: int | None
    quantity: Decimal | None
    instructions: str | None
    coded: CodedDrug | None = None  # None: free text, not coded
    override: Override | None = None


@dataclass(frozen=True)
class PastProcedure:
    text: str
    performed: date | None = None


@dataclass(frozen=True)
class FamilyHistory:
    relationship: str  # v3-RoleCode
    relationship_display: str
    condition: str


@dataclass(frozen=True)
class Author:
    """The signed-in clinician who records the visit (their Practitioner and PractitionerRole)."""
    practitioner_id: str
    role_id: str | None
    name: str


@dataclass
class Visit:
    patient_id: str
    organization_id: str
    token: str  # the form's one-time submission token
    started: datetime
    class_code: str = "AMB"
    class_display: str = "ambulatory"
    reason: str | None = None
    vitals: dict[str, Decimal] = field(default_factory=dict)  # keys of VITAL_SIGNS, without bmi
    blood_group: tuple[str, str] | None = None  # (code, display)
    diagnoses: list[Diagnosis] = field(default_factory=list)
    allergies: list[Allergy] = field(default_factory=list)
    vaccinations: list[Vaccination] = field(default_factory=list)
    prescriptions: list[Prescription] = field(default_factory=list)
    procedures: list[PastProcedure] = field(default_factory=list)
    family: list[FamilyHistory] = field(default_factory=list)
    note: str | None = None
    advice: str | None = None
    revisit: date | None = None
    author: Author | None = None
    # Items of this visit an edit replaces: kept, marked entered-in-error, in the same transaction.
    replaces: list[dict[str, Any]] = field(default_factory=list)
    # The facility's queued Encounter (from check-in) the visit is recorded into, with its version
    # for If-Match; None records a walk-in visit as a new Encounter.
    encounter: dict[str, Any] | None = None
    encounter_version: str | None = None
    # Whether this form records the diagnoses (a doctor's does, a nurse's does not): only then
    # does it set Encounter.diagnosis, possibly to none.
    diagnoses_recorded: bool = True


def bmi(height_cm: Decimal, weight_kg: Decimal) -> Decimal:
    """Body mass index, one decimal (kg/m2)."""
    metres = height_cm / Decimal(100)
    return (weight_kg / (metres * metres)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


class _Builder:
    def __init__(self, visit: Visit, identifier_base: str) -> None:
        self.visit = visit
        self.system = f"{identifier_base.rstrip('/')}/{ITEM_SYSTEM_PATH}"
        self.entries: list[dict[str, Any]] = []
        self.encounter_url = f"Encounter/{visit.encounter['id']}" if visit.encounter else self._urn()
        self.patient = {"reference": f"Patient/{visit.patient_id}"}
        self.encounter = {"reference": self.encounter_url}
        self.when = visit.started.isoformat()
        self.organization = {"reference": f"Organization/{visit.organization_id}"}
        author = visit.author
        self.practitioner = {"reference": f"Practitioner/{author.practitioner_id}", "display": author.name} if author else None

    def by(self) -> list[dict[str, Any]]:
        """Who recorded an item: the clinician (when known) and the facility."""
        return [r for r in (self.practitioner, self.organization) if r]

    @staticmethod
    def _urn() -> str:
        return f"urn:uuid:{uuid.uuid4()}"

    def add(self, resource: dict[str, Any], item: str, url: str | None = None) -> str:
        value = f"{self.visit.token}/{item}"
        ident = {"system": self.system, "value": value}
        resource["identifier"] = ident if resource["resourceType"] in _SINGLE_IDENTIFIER else [ident]
        url = url or self._urn()
        self.entries.append({
            "fullUrl": url,
            "resource": resource,
            "request": {"method": "POST", "url": resource["resourceType"], "ifNoneExist": f"identifier={self.system}|{value}"},
        })
        return url


def _quantity(value: Decimal, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def _vital(b: _Builder, key: str, value: Decimal) -> None:
    sign = VITAL_SIGNS[key]
    b.add({
        "resourceType": "Observation", "status": "final",
        "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "vital-signs", "display": "Vital Signs"}]}],
        "code": {"coding": [{"system": LOINC, "code": sign.loinc, "display": sign.display}], "text": sign.display},
        "subject": b.patient, "encounter": b.encounter, "effectiveDateTime": b.when, "performer": b.by(),
        "valueQuantity": _quantity(value, sign.unit or ""),
    }, f"vital-{key}")


def _blood_pressure(b: _Builder, systolic: Decimal, diastolic: Decimal) -> None:
    panel, sys_, dia = VITAL_SIGNS["bp"], VITAL_SIGNS["systolic"], VITAL_SIGNS["diastolic"]
    b.add({
        "resourceType": "Observation", "status": "final",
        "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "vital-signs", "display": "Vital Signs"}]}],
        "code": {"coding": [{"system": LOINC, "code": panel.loinc, "display": panel.display}], "text": "Blood pressure"},
        "subject": b.patient, "encounter": b.encounter, "effectiveDateTime": b.when, "performer": b.by(),
        "component": [
            {"code": {"coding": [{"system": LOINC, "code": s.loinc, "display": s.display}]}, "valueQuantity": _quantity(v, "mm[Hg]")}
            for s, v in ((sys_, systolic), (dia, diastolic))
        ],
    }, "vital-bp")


def _vitals(b: _Builder) -> None:
    v = b.visit.vitals
    if "systolic" in v and "diastolic" in v:
        _blood_pressure(b, v["systolic"], v["diastolic"])
    for key in ("heart_rate", "temperature", "spo2", "respiratory_rate", "height", "weight"):
        if key in v:
            _vital(b, key, v[key])
    if "height" in v and "weight" in v:
        _vital(b, "bmi", bmi(v["height"], v["weight"]))
    if b.visit.blood_group:
        code, display = b.visit.blood_group
        b.add({
            "resourceType": "Observation", "status": "final",
            "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "laboratory", "display": "Laboratory"}]}],
            "code": {"coding": [{"system": LOINC, "code": BLOOD_GROUP_LOINC, "display": "ABO and Rh group [Type] in Blood"}]},
            "subject": b.patient, "encounter": b.encounter, "effectiveDateTime": b.when, "performer": b.by(),
            "valueCodeableConcept": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display},
        }, "blood-group")


def _diagnoses(b: _Builder) -> list[dict[str, Any]]:
    ranked = []
    for rank, d in enumerate(b.visit.diagnoses, start=1):
        if d.existing_id:
            ranked.append(_ranked(f"Condition/{d.existing_id}", rank, f"{d.code} {d.display}"))
            continue
        condition: dict[str, Any] = {
            "resourceType": "Condition",
            "clinicalStatus": {"coding": [{"system": CONDITION_CLINICAL, "code": "active"}]},
            "verificationStatus": {"coding": [{"system": CONDITION_VERIFICATION, "code": "confirmed"}]},
            "category": [{"coding": [{"system": CONDITION_CATEGORY, "code": "encounter-diagnosis", "display": "Encounter Diagnosis"}]}],
            "code": {"coding": [{"system": ICD10, **({"version": d.version} if d.version else {}), "code": d.code, "display": d.display}],
                     "text": d.display},
            "subject": b.patient, "encounter": b.encounter, "recordedDate": b.when,
        }
        if b.practitioner:
            condition["recorder"] = condition["asserter"] = b.practitioner
        ranked.append(_ranked(b.add(condition, f"diagnosis-{rank}"), rank))
    return ranked


def _ranked(reference: str, rank: int, display: str | None = None) -> dict[str, Any]:
    return {
        "condition": {"reference": reference, **({"display": display} if display else {})}, "rank": rank,
        "use": {"coding": [{"system": DIAGNOSIS_ROLE, "code": "DD" if rank == 1 else "CM",
                            "display": "Discharge diagnosis" if rank == 1 else "Comorbidity diagnosis"}]},
    }


def _history(b: _Builder) -> None:
    v = b.visit
    for i, a in enumerate(v.allergies, start=1):
        allergy: dict[str, Any] = {
            "resourceType": "AllergyIntolerance",
            "clinicalStatus": {"coding": [{"system": ALLERGY_CLINICAL, "code": "active"}]},
            "verificationStatus": {"coding": [{"system": ALLERGY_VERIFICATION, "code": "confirmed"}]},
            "code": {"text": a.substance}, "patient": b.patient, "encounter": b.encounter, "recordedDate": b.when,
        }
        if a.criticality:
            allergy["criticality"] = a.criticality
        if a.reaction:
            allergy["reaction"] = [{"manifestation": [{"text": a.reaction}]}]
        if b.practitioner:
            allergy["recorder"] = b.practitioner
        b.add(allergy, f"allergy-{i}")
    for i, vac in enumerate(v.vaccinations, start=1):
        shot: dict[str, Any] = {
            "resourceType": "Immunization", "status": "completed",
            "vaccineCode": {"coding": [{"system": CVX, "code": vac.cvx, "display": vac.display}], "text": vac.display},
            "patient": b.patient, "encounter": b.encounter, "occurrenceDateTime": vac.occurred.isoformat(),
            "performer": [*([{"function": {"coding": [{"system": PERFORMER_FUNCTION, "code": "AP", "display": "Administering Provider"}]},
                               "actor": b.practitioner}] if b.practitioner else []),
                          {"actor": {"reference": f"Organization/{v.organization_id}"}}],
        }
        if vac.lot:
            shot["lotNumber"] = vac.lot
        if vac.site:
            shot["site"] = {"coding": [{"system": vac.site_system, "code": vac.site, "display": vac.site_display or vac.site}]}
        b.add(shot, f"immunization-{i}")
    for i, p in enumerate(v.procedures, start=1):
        procedure: dict[str, Any] = {
            "resourceType": "Procedure", "status": "completed", "code": {"text": p.text},
            "subject": b.patient, "encounter": b.encounter,
        }
        if b.practitioner:
            procedure["recorder"] = b.practitioner
        if p.performed:
            procedure["performedDateTime"] = p.performed.isoformat()
        b.add(procedure, f"procedure-{i}")
    for i, f in enumerate(v.family, start=1):
        b.add({
            "resourceType": "FamilyMemberHistory", "status": "completed", "patient": b.patient,
            "extension": [{"url": ASSOCIATED_ENCOUNTER, "valueReference": b.encounter}],
            "relationship": {"coding": [{"system": ROLE_CODE, "code": f.relationship, "display": f.relationship_display}]},
            "condition": [{"code": {"text": f.condition}}],
        }, f"family-{i}")


def _prescriptions(b: _Builder) -> None:
    for i, rx in enumerate(b.visit.prescriptions, start=1):
        dosage: dict[str, Any] = {
            "sequence": 1,
            "timing": {"repeat": {"frequency": rx.frequency, "period": 1, "periodUnit": "d"}},
        }
        if rx.duration_days:
            dosage["timing"]["repeat"]["boundsDuration"] = {"value": rx.duration_days, "unit": "d", "system": UCUM, "code": "d"}
        if rx.instructions:
            dosage["text"] = rx.instructions
        if rx.route:
            dosage["route"] = {"coding": [{"system": SNOMED, "code": rx.route, "display": rx.route_display or rx.route}]}
        if rx.dose_value is not None:
            dosage["doseAndRate"] = [{"doseQuantity": {"value": rx.dose_value, "unit": rx.dose_unit or ""}}]
        request: dict[str, Any] = {
            "resourceType": "MedicationRequest", "status": "active", "intent": "order",
            "medicationCodeableConcept": _medication(rx),
            "subject": b.patient, "encounter": b.encounter, "authoredOn": b.when,
            "dosageInstruction": [dosage],
        }
        if b.practitioner:
            request["requester"] = b.practitioner
        url = b._urn()
        issues = _detected_issues(b, rx, i, url)
        if issues:
            request["detectedIssue"] = [{"reference": u} for u in issues]
        if rx.quantity is not None or rx.duration_days:
            dispense: dict[str, Any] = {}
            if rx.quantity is not None:
                dispense["quantity"] = {"value": rx.quantity}
            if rx.duration_days:
                dispense["expectedSupplyDuration"] = {"value": rx.duration_days, "unit": "d", "system": UCUM, "code": "d"}
            request["dispenseRequest"] = dispense
        b.add(request, f"prescription-{i}", url=url)
        # The DetectedIssues after their MedicationRequest (each references the other).
        b.entries.extend(issues.values())


def _medication(rx: Prescription) -> dict[str, Any]:
    """A catalogue drug as a coding of the catalogue (its version) with the active ingredient; free
    text as text only (not coded)."""
    if rx.coded is None:
        return {"text": rx.drug}
    c = rx.coded
    coding = [{"system": c.system, "code": c.code, "display": c.display, **({"version": c.version} if c.version else {})}]
    if c.ingredient_code and c.ingredient_system:
        coding.append({"system": c.ingredient_system, "code": c.ingredient_code, **({"display": c.ingredient} if c.ingredient else {})})
    return {"coding": coding, "text": rx.drug}


def _detected_issues(b: _Builder, rx: Prescription, i: int, request_url: str) -> dict[str, dict[str, Any]]:
    """The overridden warnings of a prescription as DetectedIssues (by reference): what was found,
    what it implicates, and the clinician's reason as the mitigation (who, when, why)."""
    if rx.override is None:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for j, issue in enumerate(rx.override.issues, start=1):
        mitigation: dict[str, Any] = {
            "action": {"coding": [{"system": ACT_CODE, "code": "1", "display": "Therapy Appropriate"}], "text": rx.override.reason},
            "date": b.when,
        }
        if b.practitioner:
            mitigation["author"] = b.practitioner
        resource: dict[str, Any] = {
            "resourceType": "DetectedIssue", "status": "final",
            "code": {"coding": [{"system": ACT_CODE, "code": issue.code, "display": issue.display}], "text": issue.detail},
            "severity": issue.severity, "patient": b.patient, "identifiedDateTime": b.when,
            "implicated": [{"reference": request_url}, *([{"reference": issue.implicated}] if issue.implicated else [])],
            "detail": issue.detail, "mitigation": [mitigation],
        }
        # DetectedIssue has no search parameter here to make a conditional create on: its id is
        # derived from the submission token instead (a resubmitted form writes the same resource).
        item = f"prescription-{i}-issue-{j}"
        resource["id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{b.system}|{b.visit.token}/{item}"))
        b.add(resource, item)
        entry = b.entries.pop()
        del entry["fullUrl"]
        entry["request"] = {"method": "PUT", "url": f"DetectedIssue/{resource['id']}"}
        out[entry["request"]["url"]] = entry
    return out


def _summary(b: _Builder) -> None:
    v = b.visit
    if v.revisit:
        b.add({
            "resourceType": "Appointment", "status": "proposed",
            "description": "Tái khám",
            "start": f"{v.revisit.isoformat()}T08:00:00+07:00", "end": f"{v.revisit.isoformat()}T08:30:00+07:00",
            "supportingInformation": [b.encounter],
            "participant": [
                {"actor": b.patient, "status": "needs-action"},
                {"actor": {"reference": f"Organization/{v.organization_id}"}, "status": "accepted"},
            ],
        }, "revisit")
    sections = []
    for title, code, text in (("Ghi chú lâm sàng", "10164-2", v.note), ("Lời dặn của bác sĩ", "69730-0", v.advice)):
        if text:
            sections.append({
                "title": title, "code": {"coding": [{"system": LOINC, "code": code}]},
                "text": {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{_escape(text)}</div>'},
            })
    if sections:
        b.add({
            "resourceType": "Composition", "status": "preliminary",
            "type": {"coding": [{"system": LOINC, "code": "34133-9", "display": "Summary of episode note"}]},
            "subject": b.patient, "encounter": b.encounter, "date": b.when,
            "author": b.by(), "title": "Tóm tắt đợt khám",
            "section": sections,
        }, "summary")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\n", "<br/>")


def transaction(visit: Visit, identifier_base: str) -> dict[str, Any]:
    """The whole visit as one transaction Bundle (entries conditional on the submission token)."""
    b = _Builder(visit, identifier_base)
    encounter = _encounter(b)
    if visit.encounter:
        # Recorded into the queued Encounter: an If-Match update, so a second desk that changed it
        # meanwhile makes the whole visit fail rather than overwrite.
        b.add(encounter, "encounter", url=b.encounter_url)
        entry = b.entries[-1]
        del entry["fullUrl"]  # an existing resource: referenced as Encounter/<id>
        entry["request"] = {"method": "PUT", "url": b.encounter_url,
                            **({"ifMatch": f'W/"{visit.encounter_version}"'} if visit.encounter_version else {})}
        _keep_identifiers(encounter, visit.encounter)
    else:
        b.add(encounter, "encounter", url=b.encounter_url)
    _vitals(b)
    ranked = _diagnoses(b)
    if ranked:
        encounter["diagnosis"] = ranked
    elif visit.diagnoses_recorded:
        encounter.pop("diagnosis", None)
    _history(b)
    _prescriptions(b)
    _summary(b)
    for old in visit.replaces:
        b.entries.append({"resource": corrections.entered_in_error(old),
                          "request": {"method": "PUT", "url": f"{old['resourceType']}/{old['id']}"}})
    return {"resourceType": "Bundle", "type": "transaction", "entry": b.entries}


def _encounter(b: _Builder) -> dict[str, Any]:
    visit = b.visit
    encounter: dict[str, Any] = dict(visit.encounter or {})
    encounter.pop("meta", None)
    previous = encounter.get("status")
    encounter.update({
        "resourceType": "Encounter", "status": "in-progress",
        "class": {"system": ACT_CODE, "code": visit.class_code, "display": visit.class_display},
        "subject": b.patient, "serviceProvider": b.organization,
    })
    encounter["period"] = {"start": (visit.encounter or {}).get("period", {}).get("start") or b.when}
    if previous and previous != "in-progress":
        history = list(encounter.get("statusHistory") or [])
        since = history[-1]["period"].get("end") if history and isinstance(history[-1].get("period"), dict) else None
        history.append({"status": previous, "period": {"start": since or encounter["period"]["start"], "end": b.when}})
        encounter["statusHistory"] = history
    if visit.reason:
        encounter["reasonCode"] = [{"text": visit.reason}]
    if b.practitioner:
        # Everyone who recorded into this Encounter stays a participant (the nurse, then the doctor).
        others = [p for p in encounter.get("participant") or []
                  if (p.get("individual") or {}).get("reference") != b.practitioner["reference"]]
        encounter["participant"] = [*others, {
            "type": [{"coding": [{"system": PARTICIPATION, "code": "ATND", "display": "attender"}]}],
            "period": {"start": b.when}, "individual": b.practitioner,
        }]
    return encounter


def _keep_identifiers(encounter: dict[str, Any], queued: dict[str, Any]) -> None:
    """The queue number (and any earlier identifier) stays beside the visit's own token."""
    mine = encounter.get("identifier") or []
    encounter["identifier"] = [*(i for i in queued.get("identifier") or [] if i not in mine), *mine]


# --- drafts -------------------------------------------------------------------------------------------



def _visit_tokens(doc: dict[str, Any]) -> set[str]:
    idents = doc.get("identifier")
    idents = [idents] if isinstance(idents, dict) else (idents or [])
    return {str(i.get("value", "")).split("/", 1)[0] for i in idents
            if isinstance(i, dict) and str(i.get("system", "")).endswith(f"/{ITEM_SYSTEM_PATH}") and i.get("value")}


def _clinic_encounter(doc: dict[str, Any]) -> bool:
    """Recorded by a clinic's form or its queue (not an Encounter sent over the API)."""
    idents = doc.get("identifier") or []
    return bool(_visit_tokens(doc)) or any(isinstance(i, dict) and "/queue/" in str(i.get("system", "")) for i in idents)


def _signed_encounters(docs: list[dict[str, Any]]) -> set[str]:
    """Ids of the Encounters a signature Provenance of the record covers."""
    return {str(t.get("reference", "")).split("/")[1] for d in docs if d.get("resourceType") == "Provenance"
            for t in d.get("target") or [] if str(t.get("reference", "")).startswith("Encounter/")}


def without_drafts(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The record without the clinic visits not yet signed and without what was entered in error:
    a clinic visit (its Encounter and every resource written with it) stays the clinic's until the
    doctor signs it, finished in the queue or not; a queue entry with no visit is nothing to show."""
    docs = corrections.hidden(docs)
    signed = _signed_encounters(docs)
    open_visits = [d for d in docs if d.get("resourceType") == "Encounter" and _clinic_encounter(d)
                   and not (d.get("status") == "finished" and d.get("id") in signed)]
    if not open_visits:
        return docs
    drafts = set().union(*(_visit_tokens(d) for d in open_visits))
    skip = {id(d) for d in open_visits}
    # Written later into the visit (lab orders and results) carry no form token: their Encounter says.
    open_refs = {f"Encounter/{d.get('id')}" for d in open_visits}
    return [d for d in docs if id(d) not in skip and not (_visit_tokens(d) & drafts)
            and not (isinstance(d.get("encounter"), dict) and d["encounter"].get("reference") in open_refs)]
