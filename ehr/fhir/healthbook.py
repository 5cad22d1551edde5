"""The patient's health book (Sổ sức khỏe điện tử) read from the FHIR resources of one record.

Pure: resource dicts in (one Patient/$everything), plain dataclasses out, grouped the way
QĐ 31/QĐ-BYT Art. 2(3) groups the book: administrative information (Patient, Coverage,
RelatedPerson); history (AllergyIntolerance, Condition, Procedure, FamilyMemberHistory,
Immunization); every visit (Encounter and what references it: diagnoses ICD-10 with the main one
first, blood group/height/weight, test results, medicines, procedures); the treatment summary
(Composition LOINC 34133-9: advice, further treatment; the re-visit Appointment; the treating
doctor). Plus the series the charts draw and the vaccination table by vaccine and dose.

No labels are chosen here: codes and the record's own text come out, pages translate. Times are
shown in Vietnam's zone (UTC+7, no daylight saving).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Iterable

from defusedxml.ElementTree import fromstring

from ehr.fhir.dates import DEFAULT_ZONE
from ehr.fhir.terminology import ICD10, LOINC
from ehr.identity import icd10

VN = DEFAULT_ZONE
BLOOD_GROUP = "882-1"
HEIGHT, WEIGHT, BMI = "8302-2", "29463-7", "39156-5"
BP_PANEL, SYSTOLIC, DIASTOLIC = "85354-9", "8480-6", "8462-4"
VISIT_SUMMARY = "34133-9"
ADVICE, NOTE, PLAN = "69730-0", "10164-2", "18776-5"  # Lời dặn; Ghi chú lâm sàng; Hướng điều trị tiếp theo
MAIN_DIAGNOSIS_EXT = "https://fhir.ehr-vn.org/StructureDefinition/main-diagnosis"
COVERAGE_REGISTERED = "https://fhir.ehr-vn.org/StructureDefinition/coverage-registered-facility"
ETHNICITY_EXT = "https://fhir.ehr-vn.org/StructureDefinition/patient-ethnicity"
OCCUPATION_EXT = "https://fhir.ehr-vn.org/StructureDefinition/patient-occupation"
NATIONALITY_EXT = "http://hl7.org/fhir/StructureDefinition/patient-nationality"
ASSOCIATED_ENCOUNTER = "http://hl7.org/fhir/StructureDefinition/encounter-associatedEncounter"
CONSENT_ACTOR_ROLE = "IRCP"
# ICD-10 blocks of long-lasting illnesses (shown up front and on the emergency card).
CHRONIC_PREFIXES = ("I1", "I20", "I21", "I22", "I23", "I24", "I25", "I48", "I50", "E10", "E11", "E12", "E13", "E14", "E78",
                    "E03", "E05", "J44", "J45", "N18", "B18", "K74", "G40", "M05", "M06", "F20", "F31")
# Normal ranges used when a result carries no referenceRange: (low, high) in the code's usual unit.
DEFAULT_RANGES: dict[str, tuple[Decimal, Decimal]] = {
    SYSTOLIC: (Decimal(90), Decimal(130)),  # normal below 130/85 mmHg (Hội Tim mạch học Việt Nam 2022)
    DIASTOLIC: (Decimal(60), Decimal(85)),
    BMI: (Decimal("18.5"), Decimal("23")),  # adults of Asia (WHO Western Pacific): 18.5-22.9
    "14749-6": (Decimal("3.9"), Decimal("6.4")),  # fasting glucose, mmol/L
    "2345-7": (Decimal(70), Decimal(100)),  # glucose, mg/dL
    "1558-6": (Decimal(70), Decimal(100)),  # fasting glucose, mg/dL
    "4548-4": (Decimal(4), Decimal("5.7")),  # HbA1c, %
    "17856-6": (Decimal(4), Decimal("5.7")),
    "14647-2": (Decimal("3.9"), Decimal("5.2")),  # total cholesterol, mmol/L
    "2093-3": (Decimal(100), Decimal(200)),  # total cholesterol, mg/dL
    "8867-4": (Decimal(60), Decimal(100)),  # heart rate
}
UNIT_SYMBOLS = {"mm[Hg]": "mmHg", "Cel": "°C", "kg/m2": "kg/m²", "[degF]": "°F", "10*3/uL": "×10³/µL", "10*9/L": "×10⁹/L"}


# --- small readers --------------------------------------------------------------------------------


def parse_when(value: Any) -> datetime | None:
    """An aware datetime (Vietnam time) for a FHIR date/dateTime/instant; partial dates start their period."""
    if not isinstance(value, str) or not value:
        return None
    try:
        if len(value) == 4:
            return datetime(int(value), 1, 1, tzinfo=VN)
        if len(value) == 7:
            return datetime(int(value[:4]), int(value[5:7]), 1, tzinfo=VN)
        if len(value) == 10:
            d = date.fromisoformat(value)
            return datetime(d.year, d.month, d.day, tzinfo=VN)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=VN) if parsed.tzinfo is None else parsed.astimezone(VN)


def day(value: Any) -> str:
    """dd/mm/yyyy (partial dates as mm/yyyy or yyyy), in Vietnam time."""
    if isinstance(value, datetime):
        return value.astimezone(VN).strftime("%d/%m/%Y")
    if isinstance(value, date):
        return value.strftime("%d/%m/%Y")
    if not isinstance(value, str) or not value:
        return ""
    if len(value) == 4:
        return value
    if len(value) == 7:
        return f"{value[5:7]}/{value[:4]}"
    when = parse_when(value)
    return when.strftime("%d/%m/%Y") if when else value


def moment(value: Any) -> str:
    """dd/mm/yyyy HH:MM in Vietnam time; a date without a time stays a date."""
    if isinstance(value, str) and len(value) > 10:
        when = parse_when(value)
        return when.strftime("%d/%m/%Y %H:%M") if when else value
    if isinstance(value, datetime):
        return value.astimezone(VN).strftime("%d/%m/%Y %H:%M")
    return day(value)


def iso_day(value: Any) -> str:
    """yyyy-mm-dd in Vietnam time (for file names)."""
    when = value if isinstance(value, datetime) else parse_when(value)
    return when.astimezone(VN).date().isoformat() if when else ""


def ref_id(ref: Any, resource_type: str | None = None) -> str | None:
    """The id of a relative reference `Type/id` (of `resource_type` when given)."""
    text = ref.get("reference") if isinstance(ref, dict) else ref
    if not isinstance(text, str) or "/" not in text:
        return None
    parts = text.split("/_history/")[0].split("/")
    kind, rid = parts[-2], parts[-1]
    if resource_type and kind != resource_type:
        return None
    return rid or None


def text_of(concept: Any) -> str:
    if not isinstance(concept, dict):
        return ""
    codings = concept.get("coding") or [{}]
    return str(concept.get("text") or codings[0].get("display") or codings[0].get("code") or "")


def code_of(concept: Any, system: str | None = None) -> str | None:
    for coding in (concept or {}).get("coding") or ():
        if system is None or coding.get("system") == system:
            return coding.get("code")
    return None


def codes_of(concept: Any, system: str | None = None) -> set[str]:
    return {c.get("code") for c in (concept or {}).get("coding") or () if c.get("code") and (system is None or c.get("system") == system)}


def name_of(resource: dict[str, Any] | None) -> str:
    if not resource:
        return ""
    if isinstance(resource.get("name"), str):
        return str(resource["name"])
    names = resource.get("name") or [{}]
    first = names[0] if isinstance(names[0], dict) else {}
    return str(first.get("text") or " ".join([first.get("family", ""), *first.get("given", [])]).strip())


def mask_national_id(value: str | None, keep: int = 3) -> str:
    """`*********345`: only the last `keep` digits of a citizen ID are shown."""
    if not value:
        return ""
    return "*" * max(len(value) - keep, 0) + value[-keep:]


def age(birth: str | None, today: date) -> int | None:
    when = parse_when(birth)
    if when is None:
        return None
    born = when.date()
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def div_text(div: Any) -> str:
    """The plain text of a narrative div (line breaks kept); the narrative was checked on write."""
    if not isinstance(div, str) or not div:
        return ""
    try:
        root = fromstring(div.replace("<br/>", "\n").replace("<br />", "\n").replace("<br>", "\n"))
    except Exception:  # noqa: BLE001 - a malformed div shows as nothing rather than as markup
        return ""
    return "".join(root.itertext()).strip()


def number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def unit_symbol(unit: str | None) -> str:
    return UNIT_SYMBOLS.get(unit or "", unit or "")


def _ext(resource: dict[str, Any], url: str) -> dict[str, Any] | None:
    return next((e for e in resource.get("extension") or () if e.get("url") == url), None)


# --- the record -------------------------------------------------------------------------------------


class Record:
    """The resources of one patient's record, indexed by type and by `Type/id`."""

    def __init__(self, patient_id: str, resources: Iterable[dict[str, Any]]) -> None:
        self.patient_id = patient_id
        self.by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.by_ref: dict[str, dict[str, Any]] = {}
        for doc in resources:
            self.by_type[doc["resourceType"]].append(doc)
            self.by_ref[f"{doc['resourceType']}/{doc.get('id')}"] = doc
        self.patient = self.by_ref.get(f"Patient/{patient_id}", {})

    def of(self, resource_type: str) -> list[dict[str, Any]]:
        """This patient's resources of a type (a record may also hold other patients' references)."""
        out = []
        for doc in self.by_type.get(resource_type, ()):
            owner = doc.get("subject") or doc.get("patient") or doc.get("beneficiary") or doc.get("for")
            if owner is None and resource_type == "Appointment":
                owner = next((p["actor"] for p in doc.get("participant") or () if ref_id(p.get("actor"), "Patient")), None)
            if owner is None or ref_id(owner, "Patient") == self.patient_id:
                out.append(doc)
        return out

    def name(self, ref: Any) -> str:
        """The name of a referenced Organization or Practitioner (or the reference's display)."""
        target = self.by_ref.get(ref.get("reference", "")) if isinstance(ref, dict) else None
        if target:
            return name_of(target)
        return str(ref.get("display") or "") if isinstance(ref, dict) else ""


@dataclass(frozen=True)
class Allergy:
    substance: str
    criticality: str | None
    category: str | None
    reactions: tuple[str, ...]
    recorded: str


@dataclass(frozen=True)
class Illness:
    code: str | None  # ICD-10
    name: str
    onset: str
    chronic: bool
    active: bool


@dataclass(frozen=True)
class Diagnosis:
    code: str | None
    name: str
    main: bool


@dataclass(frozen=True)
class Measurement:
    code: str | None
    name: str
    value: Decimal | None
    text: str  # the value as recorded (a quantity, a pair for blood pressure, a coded answer)
    unit: str
    when: str
    low: Decimal | None = None
    high: Decimal | None = None
    flag: str | None = None  # "H" above the range, "L" below it
    answer: str | None = None  # the code of a coded result (a blood group's LOINC answer)


@dataclass(frozen=True)
class Medicine:
    name: str
    dosage: str
    route: str
    quantity: str
    days: int | None
    authored: str
    status: str
    encounter_id: str | None


@dataclass(frozen=True)
class Surgery:
    name: str
    when: str
    encounter_id: str | None


@dataclass(frozen=True)
class Relative:
    relationship: str
    relationship_code: str | None
    conditions: tuple[str, ...]


@dataclass(frozen=True)
class Shot:
    vaccine_code: str | None
    vaccine: str
    when: str
    dose: int | None
    facility: str
    lot: str
    site: str


@dataclass(frozen=True)
class VaccineRow:
    code: str | None
    vaccine: str
    doses: tuple[Shot, ...]


@dataclass(frozen=True)
class Appointment:
    id: str
    start: str
    description: str
    facility: str
    status: str
    encounter_id: str | None


@dataclass
class Visit:
    id: str
    start: str
    end: str
    facility_id: str | None
    facility: str
    class_code: str | None
    care_type: str
    reason: str
    status: str
    doctor: str
    discharge: str = ""  # status at discharge (Encounter.hospitalization.dischargeDisposition)
    diagnoses: list[Diagnosis] = field(default_factory=list)
    blood_group: Measurement | None = None
    height: Measurement | None = None
    weight: Measurement | None = None
    vitals: list[Measurement] = field(default_factory=list)
    labs: list[Measurement] = field(default_factory=list)
    medicines: list[Medicine] = field(default_factory=list)
    procedures: list[Surgery] = field(default_factory=list)
    immunizations: list[Shot] = field(default_factory=list)
    note: str = ""
    advice: str = ""
    plan: str = ""
    revisit: Appointment | None = None

    @property
    def main_diagnosis(self) -> Diagnosis | None:
        return self.diagnoses[0] if self.diagnoses else None


@dataclass(frozen=True)
class Coverage:
    card: str
    registered_facility: str
    valid_from: str
    valid_to: str
    benefit_level: str
    status: str


@dataclass(frozen=True)
class Contact:
    name: str
    relationship: str
    relationship_codes: tuple[str, ...]
    national_id: str  # masked
    phone: str
    legal_representative: bool


@dataclass(frozen=True)
class Admin:
    name: str
    birth_date: str
    gender: str
    ethnicity: str
    nationality: str
    occupation: str
    national_id: str  # masked
    phone: str
    address: str
    coverages: tuple[Coverage, ...]
    contacts: tuple[Contact, ...]


@dataclass(frozen=True)
class Point:
    when: datetime
    value: Decimal
    text: str  # the value as shown at the point ("130/85" for blood pressure)


@dataclass(frozen=True)
class Line:
    code: str
    name: str
    points: tuple[Point, ...]


@dataclass(frozen=True)
class Series:
    key: str  # bp, weight, bmi, or the LOINC code of a lab
    name: str
    unit: str
    lines: tuple[Line, ...]
    ranges: tuple[tuple[Decimal, Decimal], ...]  # normal ranges to shade (one per line that has one)

    @property
    def count(self) -> int:
        """How many measurements (a blood pressure reading is one point with two values)."""
        return max((len(line.points) for line in self.lines), default=0)


@dataclass
class Book:
    patient_id: str
    patient: dict[str, Any]
    name: str
    gender: str
    birth_date: str
    age: int | None
    national_id: str  # masked
    admin: Admin
    blood_group: Measurement | None
    height: Measurement | None
    weight: Measurement | None
    allergies: list[Allergy]
    illnesses: list[Illness]
    surgeries: list[Surgery]
    family: list[Relative]
    shots: list[Shot]
    vaccines: list[VaccineRow]
    visits: list[Visit]  # newest first
    appointments: list[Appointment]  # upcoming, soonest first
    medicines: list[Medicine]  # current
    series: list[Series]

    @property
    def chronic(self) -> list[Illness]:
        return [i for i in self.illnesses if i.chronic and i.active]

    @property
    def latest_visit(self) -> Visit | None:
        return self.visits[0] if self.visits else None

    @property
    def next_appointment(self) -> Appointment | None:
        return self.appointments[0] if self.appointments else None

    @property
    def emergency_contact(self) -> Contact | None:
        with_phone = [c for c in self.admin.contacts if c.phone]
        return (with_phone or list(self.admin.contacts) or [None])[0]

    def visit(self, encounter_id: str) -> Visit | None:
        return next((v for v in self.visits if v.id == encounter_id), None)


# --- measurements ----------------------------------------------------------------------------------


def _range(obs: dict[str, Any], code: str | None) -> tuple[Decimal | None, Decimal | None]:
    for ref in obs.get("referenceRange") or ():
        low, high = number((ref.get("low") or {}).get("value")), number((ref.get("high") or {}).get("value"))
        if low is not None or high is not None:
            return low, high
    return DEFAULT_RANGES.get(code or "", (None, None))


def _flag(value: Decimal | None, low: Decimal | None, high: Decimal | None) -> str | None:
    if value is None:
        return None
    if high is not None and value > high:
        return "H"
    if low is not None and value < low:
        return "L"
    return None


def _loinc(obs: dict[str, Any]) -> str | None:
    return code_of(obs.get("code"), LOINC) or code_of(obs.get("code"))


def _when(obs: dict[str, Any]) -> str:
    return str(obs.get("effectiveDateTime") or (obs.get("effectivePeriod") or {}).get("start") or obs.get("issued") or "")


def measurement(obs: dict[str, Any]) -> Measurement:
    code = _loinc(obs)
    name = text_of(obs.get("code"))
    when = _when(obs)
    if "valueQuantity" in obs:
        q = obs["valueQuantity"]
        value = number(q.get("value"))
        unit = str(q.get("code") or q.get("unit") or "")
        low, high = _range(obs, code)
        return Measurement(code, name, value, str(q.get("value", "")), unit, when, low, high, _flag(value, low, high))
    if obs.get("component"):
        parts = {code_of(c.get("code"), LOINC): c.get("valueQuantity") or {} for c in obs["component"]}
        if SYSTOLIC in parts and DIASTOLIC in parts:
            sys_v, dia_v = number(parts[SYSTOLIC].get("value")), number(parts[DIASTOLIC].get("value"))
            flag = _flag(sys_v, *DEFAULT_RANGES[SYSTOLIC]) or _flag(dia_v, *DEFAULT_RANGES[DIASTOLIC])
            return Measurement(code, name, sys_v, f"{parts[SYSTOLIC].get('value')}/{parts[DIASTOLIC].get('value')}", "mm[Hg]", when, flag=flag)
    if "valueCodeableConcept" in obs:
        answer = obs["valueCodeableConcept"]
        return Measurement(code, name, None, text_of(answer), "", when, answer=code_of(answer))
    for key in ("valueString", "valueInteger", "valueBoolean"):
        if key in obs:
            return Measurement(code, name, number(obs[key]) if key == "valueInteger" else None, str(obs[key]), "", when)
    return Measurement(code, name, None, "", "", when)


def _category(obs: dict[str, Any]) -> set[str]:
    return {c for cat in obs.get("category") or () for c in codes_of(cat)}


def _lab_result(obs: dict[str, Any]) -> bool:
    """A laboratory result with its reference range (the clinic's lab results): a trend from the first value."""
    return "laboratory" in _category(obs) and bool(obs.get("referenceRange"))


def _is_vital(obs: dict[str, Any]) -> bool:
    return "vital-signs" in _category(obs) or _loinc(obs) in (HEIGHT, WEIGHT, BMI, BP_PANEL)


def _latest(observations: list[dict[str, Any]], code: str) -> Measurement | None:
    found = [o for o in observations if _loinc(o) == code]
    if not found:
        return None
    return measurement(max(found, key=lambda o: parse_when(_when(o)) or datetime.min.replace(tzinfo=VN)))


# --- groups ----------------------------------------------------------------------------------------


def _active(resource: dict[str, Any]) -> bool:
    status = code_of(resource.get("clinicalStatus"))
    return status in (None, "active", "recurrence", "relapse")


def allergies(record: Record) -> list[Allergy]:
    out = []
    for a in record.of("AllergyIntolerance"):
        if not _active(a) or code_of(a.get("verificationStatus")) in ("refuted", "entered-in-error"):
            continue
        reactions = tuple(text_of(m) for r in a.get("reaction") or () for m in r.get("manifestation") or () if text_of(m))
        out.append(Allergy(text_of(a.get("code")), a.get("criticality"), (a.get("category") or [None])[0], reactions,
                           str(a.get("recordedDate") or a.get("onsetDateTime") or "")))
    return sorted(out, key=lambda a: (a.criticality != "high", a.substance))


def _chronic_code(code: str | None) -> bool:
    return bool(code) and any(str(code).startswith(p) for p in CHRONIC_PREFIXES)


def illnesses(record: Record) -> list[Illness]:
    """One line per ICD-10 code (earliest onset), chronic when listed as such, coded as a
    long-lasting illness, or diagnosed on two different days."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for c in record.of("Condition"):
        if code_of(c.get("verificationStatus")) in ("refuted", "entered-in-error"):
            continue
        key = code_of(c.get("code"), ICD10) or text_of(c.get("code"))
        if key:
            groups[key].append(c)
    out = []
    for items in groups.values():
        dates = sorted(d for d in (str(c.get("onsetDateTime") or c.get("recordedDate") or "") for c in items) if d)
        days = {d[:10] for d in dates}
        problem = any("problem-list-item" in codes_of(cat) for c in items for cat in c.get("category") or ())
        code = code_of(items[0].get("code"), ICD10)
        out.append(Illness(code, icd10.concept_name(items[0].get("code")) or text_of(items[0].get("code")), dates[0] if dates else "",
                           problem or _chronic_code(code) or len(days) > 1, any(_active(c) for c in items)))
    return sorted(out, key=lambda i: (not i.chronic, i.onset or "9999", i.code or i.name))


def surgeries(record: Record) -> list[Surgery]:
    out = [Surgery(text_of(p.get("code")), str(p.get("performedDateTime") or (p.get("performedPeriod") or {}).get("start") or ""),
                   ref_id(p.get("encounter"), "Encounter"))
           for p in record.of("Procedure") if p.get("status") not in ("entered-in-error", "not-done")]
    return sorted(out, key=lambda s: s.when, reverse=True)


def family(record: Record) -> list[Relative]:
    return [Relative(text_of(f.get("relationship")), code_of(f.get("relationship")),
                     tuple(text_of(c.get("code")) for c in f.get("condition") or () if text_of(c.get("code"))))
            for f in record.of("FamilyMemberHistory") if f.get("status") != "entered-in-error"]


def _facility_of_shot(record: Record, imm: dict[str, Any]) -> str:
    for performer in imm.get("performer") or ():
        if ref_id(performer.get("actor"), "Organization"):
            return record.name(performer["actor"])
    return str((imm.get("location") or {}).get("display") or "")


def shots(record: Record, docs: list[dict[str, Any]] | None = None) -> list[Shot]:
    out = []
    for imm in record.of("Immunization") if docs is None else docs:
        if imm.get("status") not in (None, "completed"):
            continue
        dose = next((p.get("doseNumberPositiveInt") for p in imm.get("protocolApplied") or () if p.get("doseNumberPositiveInt")), None)
        out.append(Shot(code_of(imm.get("vaccineCode")), text_of(imm.get("vaccineCode")), str(imm.get("occurrenceDateTime") or ""),
                        dose, _facility_of_shot(record, imm), str(imm.get("lotNumber") or ""), text_of(imm.get("site"))))
    return sorted(out, key=lambda s: s.when)


def vaccine_table(all_shots: list[Shot]) -> list[VaccineRow]:
    """One row per vaccine, doses in date order; a dose without a number follows the one before it."""
    rows: dict[str, list[Shot]] = defaultdict(list)
    for s in all_shots:
        rows[s.vaccine_code or s.vaccine].append(s)
    out = []
    for items in rows.values():
        numbered: list[Shot] = []
        for s in sorted(items, key=lambda s: s.when):
            previous = numbered[-1].dose if numbered else 0
            numbered.append(s if s.dose else Shot(s.vaccine_code, s.vaccine, s.when, (previous or 0) + 1, s.facility, s.lot, s.site))
        out.append(VaccineRow(numbered[0].vaccine_code, numbered[0].vaccine, tuple(numbered)))
    return sorted(out, key=lambda r: r.vaccine)


def medicine(m: dict[str, Any]) -> Medicine:
    dosage = (m.get("dosageInstruction") or [{}])[0]
    text = str(dosage.get("text") or "")
    repeat = (dosage.get("timing") or {}).get("repeat") or {}
    if not text and repeat.get("frequency"):
        text = f"{repeat['frequency']}×/{repeat.get('period', 1)} {repeat.get('periodUnit', 'd')}"
    dispense = m.get("dispenseRequest") or {}
    qty = dispense.get("quantity") or {}
    duration = dispense.get("expectedSupplyDuration") or repeat.get("boundsDuration") or {}
    days = int(duration["value"]) if number(duration.get("value")) is not None and duration.get("code", "d") == "d" else None
    return Medicine(
        name=text_of(m.get("medicationCodeableConcept")) or (m.get("medicationReference") or {}).get("display", ""),
        dosage=text, route=text_of(dosage.get("route")),
        quantity=f"{qty.get('value')} {qty.get('unit', '')}".strip() if qty.get("value") is not None else "",
        days=days, authored=str(m.get("authoredOn") or ""), status=str(m.get("status") or ""),
        encounter_id=ref_id(m.get("encounter"), "Encounter"),
    )


def current_medicines(record: Record, today: date) -> list[Medicine]:
    """Active prescriptions, and those whose supply has not run out yet."""
    out = []
    for m in record.of("MedicationRequest"):
        med = medicine(m)
        start = parse_when(med.authored)
        running = start is not None and med.days is not None and start.date() + timedelta(days=med.days) >= today
        if med.status == "active" or (med.status not in ("cancelled", "entered-in-error", "stopped") and running):
            out.append(med)
    return sorted(out, key=lambda m: m.authored, reverse=True)


def appointments(record: Record, now: datetime) -> list[Appointment]:
    out = []
    for a in record.of("Appointment"):
        start = parse_when(a.get("start"))
        if start is None or start < now or a.get("status") in ("cancelled", "noshow", "entered-in-error", "fulfilled"):
            continue
        out.append(_appointment(record, a))
    return sorted(out, key=lambda a: a.start)


def _appointment(record: Record, a: dict[str, Any]) -> Appointment:
    facility = next((record.name(p["actor"]) for p in a.get("participant") or () if ref_id(p.get("actor"), "Organization")), "")
    encounter = next((ref_id(s, "Encounter") for s in a.get("supportingInformation") or () if ref_id(s, "Encounter")), None)
    return Appointment(str(a.get("id")), str(a.get("start") or ""), str(a.get("description") or ""), facility, str(a.get("status") or ""), encounter)


def contacts(record: Record) -> list[Contact]:
    """Legal representatives (RelatedPerson), then the Patient's own contacts."""
    out = []
    for rp in record.of("RelatedPerson"):
        if rp.get("active") is False:
            continue
        codes = tuple(sorted({c for r in rp.get("relationship") or () for c in codes_of(r)}))
        relationship = next((text_of(r) for r in rp.get("relationship") or () if not codes_of(r) & {"GUARD"}), "")
        national = next((i.get("value") for i in rp.get("identifier") or () if str(i.get("system", "")).endswith("/cccd")), None)
        phone = next((t.get("value") for t in rp.get("telecom") or () if t.get("system") == "phone"), "")
        out.append(Contact(name_of(rp), relationship, codes, mask_national_id(national), str(phone), "GUARD" in codes))
    for c in record.patient.get("contact") or ():
        codes = tuple(sorted({code for r in c.get("relationship") or () for code in codes_of(r)}))
        phone = next((t.get("value") for t in c.get("telecom") or () if t.get("system") == "phone"), "")
        out.append(Contact(name_of({"name": [c.get("name") or {}]}), next((text_of(r) for r in c.get("relationship") or ()), ""),
                           codes, "", str(phone), False))
    return out


def _coverage(record: Record, cov: dict[str, Any]) -> Coverage:
    card = next((i.get("value") for i in cov.get("identifier") or () if str(i.get("system", "")).endswith("/bhyt")), "")
    registered = _ext(cov, COVERAGE_REGISTERED)
    facility = record.name(registered.get("valueReference")) if registered else ""
    level = next((c.get("value") for c in cov.get("class") or () if "class" in codes_of(c.get("type"))), "")
    period = cov.get("period") or {}
    return Coverage(str(card), facility, str(period.get("start") or ""), str(period.get("end") or ""), str(level), str(cov.get("status") or ""))


def admin(record: Record) -> Admin:
    p = record.patient
    national = next((i.get("value") for i in p.get("identifier") or () if str(i.get("system", "")).endswith("/cccd") and i.get("use") != "old"), None)
    ethnicity = _ext(p, ETHNICITY_EXT)
    occupation = _ext(p, OCCUPATION_EXT)
    nationality = _ext(p, NATIONALITY_EXT)
    nation = ""
    if nationality:
        nation = next((code_of(e.get("valueCodeableConcept")) or "" for e in nationality.get("extension") or () if e.get("url") == "code"), "")
    address = (p.get("address") or [{}])[0]
    phone = next((t.get("value") for t in p.get("telecom") or () if t.get("system") == "phone"), "")
    coverages = tuple(_coverage(record, c) for c in record.of("Coverage") if c.get("status") != "entered-in-error")
    return Admin(
        name=name_of(p), birth_date=str(p.get("birthDate") or ""), gender=str(p.get("gender") or ""),
        ethnicity=str(((ethnicity or {}).get("valueCoding") or {}).get("display") or ""),
        nationality=nation, occupation=str(((occupation or {}).get("valueCoding") or {}).get("display") or ""),
        national_id=mask_national_id(national), phone=str(phone),
        address=str(address.get("text") or ", ".join([*address.get("line", []), address.get("city", ""), address.get("state", "")]).strip(", ")),
        coverages=coverages, contacts=tuple(contacts(record)),
    )


# --- visits ----------------------------------------------------------------------------------------


def _diagnoses(record: Record, enc: dict[str, Any], conditions: list[dict[str, Any]]) -> list[Diagnosis]:
    ranked: list[tuple[int, dict[str, Any]]] = []
    for d in enc.get("diagnosis") or ():
        target = record.by_ref.get((d.get("condition") or {}).get("reference", ""))
        if target:
            ranked.append((int(d.get("rank") or 99), target))
    seen = {c.get("id") for _, c in ranked}
    for c in conditions:
        if c.get("id") not in seen:
            main = bool((_ext(c, MAIN_DIAGNOSIS_EXT) or {}).get("valueBoolean"))
            ranked.append((0 if main else 100, c))
    ranked.sort(key=lambda rc: rc[0])
    return [Diagnosis(code_of(c.get("code"), ICD10) or code_of(c.get("code")), icd10.concept_name(c.get("code")) or text_of(c.get("code")), i == 0)
            for i, (_, c) in enumerate(ranked)]


def _sections(composition: dict[str, Any]) -> dict[str, str]:
    out = {}
    for s in composition.get("section") or ():
        code = code_of(s.get("code"), LOINC) or s.get("title")
        out[str(code)] = div_text((s.get("text") or {}).get("div"))
    return out


def visits(record: Record) -> list[Visit]:
    linked: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for rtype in ("Observation", "Condition", "MedicationRequest", "Procedure", "Composition", "Immunization"):
        for doc in record.of(rtype):
            encounter = ref_id(doc.get("encounter"), "Encounter")
            if encounter:
                linked[encounter][rtype].append(doc)
    for a in record.of("Appointment"):
        for s in a.get("supportingInformation") or ():
            if ref_id(s, "Encounter"):
                linked[str(ref_id(s, "Encounter"))]["Appointment"].append(a)
    out = []
    for enc in record.of("Encounter"):
        items = linked[str(enc.get("id"))]
        observations = items["Observation"]
        period = enc.get("period") or {}
        doctor = next((record.name(p["individual"]) for p in enc.get("participant") or () if ref_id(p.get("individual"), "Practitioner")), "")
        visit = Visit(
            id=str(enc.get("id")), start=str(period.get("start") or ""), end=str(period.get("end") or ""),
            facility_id=ref_id(enc.get("serviceProvider"), "Organization"), facility=record.name(enc.get("serviceProvider")),
            class_code=(enc.get("class") or {}).get("code"), care_type=text_of((enc.get("type") or [None])[0]),
            reason="; ".join(text_of(r) for r in enc.get("reasonCode") or () if text_of(r)), status=str(enc.get("status") or ""),
            doctor=doctor, discharge=text_of((enc.get("hospitalization") or {}).get("dischargeDisposition")),
            diagnoses=_diagnoses(record, enc, items["Condition"]),
            blood_group=_latest(observations, BLOOD_GROUP), height=_latest(observations, HEIGHT), weight=_latest(observations, WEIGHT),
            vitals=[measurement(o) for o in observations if _is_vital(o) and _loinc(o) not in (HEIGHT, WEIGHT)],
            labs=[measurement(o) for o in observations if not _is_vital(o) and _loinc(o) != BLOOD_GROUP],
            medicines=[medicine(m) for m in items["MedicationRequest"]],
            procedures=[Surgery(text_of(p.get("code")), str(p.get("performedDateTime") or ""), str(enc.get("id"))) for p in items["Procedure"]],
            immunizations=shots(record, items["Immunization"]),
        )
        for comp in items["Composition"]:
            if code_of(comp.get("type"), LOINC) in (VISIT_SUMMARY, None):
                sections = _sections(comp)
                visit.note = sections.get(NOTE, sections.get("Ghi chú lâm sàng", visit.note))
                visit.advice = sections.get(ADVICE, sections.get("Lời dặn của bác sĩ", visit.advice))
                visit.plan = sections.get(PLAN, visit.plan)
                if not visit.doctor:
                    visit.doctor = next((record.name(a) for a in comp.get("author") or () if ref_id(a, "Practitioner")), "")
        if items["Appointment"]:
            visit.revisit = _appointment(record, sorted(items["Appointment"], key=lambda a: str(a.get("start") or ""))[0])
        out.append(visit)
    return sorted(out, key=lambda v: parse_when(v.start) or datetime.min.replace(tzinfo=VN), reverse=True)


# --- series for the charts --------------------------------------------------------------------------


def _point(obs: dict[str, Any], value: Any, text: str) -> Point | None:
    when, amount = parse_when(_when(obs)), number(value)
    return Point(when, amount, text) if when is not None and amount is not None else None


def series(record: Record, all_vitals: bool = False) -> list[Series]:
    """Blood pressure, weight, BMI, and every laboratory value measured at least twice or given
    with its reference range (a lab result of the clinic, from its first value); with
    `all_vitals` (the clinic's chart) also heart rate, temperature, SpO2 and respiratory rate,
    even when measured once (height is not a trend)."""
    bp_sys: list[Point] = []
    bp_dia: list[Point] = []
    by_code: dict[str, list[tuple[Point, dict[str, Any]]]] = defaultdict(list)
    for obs in record.of("Observation"):
        if obs.get("status") in ("entered-in-error", "cancelled"):
            continue
        code = _loinc(obs)
        if code == BP_PANEL or obs.get("component"):
            parts = {code_of(c.get("code"), LOINC): (c.get("valueQuantity") or {}).get("value") for c in obs.get("component") or ()}
            if parts.get(SYSTOLIC) is not None and parts.get(DIASTOLIC) is not None:
                label = f"{parts[SYSTOLIC]}/{parts[DIASTOLIC]}"
                s, d = _point(obs, parts[SYSTOLIC], label), _point(obs, parts[DIASTOLIC], label)
                if s and d:
                    bp_sys.append(s)
                    bp_dia.append(d)
            continue
        quantity = obs.get("valueQuantity")
        if not code or not isinstance(quantity, dict) or code in (HEIGHT,):
            continue
        if _is_vital(obs) and code not in (WEIGHT, BMI) and not all_vitals:
            continue
        point = _point(obs, quantity.get("value"), str(quantity.get("value")))
        if point:
            by_code[code].append((point, obs))
    out = []
    if bp_sys:
        out.append(Series("bp", "", "mm[Hg]", (Line(SYSTOLIC, "systolic", tuple(sorted(bp_sys, key=lambda p: p.when))),
                                             Line(DIASTOLIC, "diastolic", tuple(sorted(bp_dia, key=lambda p: p.when)))),
                          (DEFAULT_RANGES[SYSTOLIC], DEFAULT_RANGES[DIASTOLIC])))
    for code, found in sorted(by_code.items(), key=lambda kv: ({WEIGHT: 0, BMI: 1}.get(kv[0], 2), kv[0])):
        if code not in (WEIGHT, BMI) and len(found) < 2 and not (all_vitals and _is_vital(found[0][1])) and not _lab_result(found[0][1]):
            continue
        found.sort(key=lambda pf: pf[0].when)
        latest = found[-1][1]
        quantity = latest.get("valueQuantity") or {}
        low, high = _range(latest, code)
        ranges = ((low if low is not None else Decimal(0), high),) if high is not None else ()
        key = {WEIGHT: "weight", BMI: "bmi"}.get(code, code)
        out.append(Series(key, text_of(latest.get("code")), str(quantity.get("code") or quantity.get("unit") or ""),
                          (Line(code, text_of(latest.get("code")), tuple(p for p, _ in found)),), ranges))
    return out


# --- the book ----------------------------------------------------------------------------------------


def build(patient_id: str, resources: Iterable[dict[str, Any]], now: datetime) -> Book:
    """The health book of `patient_id` from the resources of their record."""
    record = Record(patient_id, resources)
    today = now.astimezone(VN).date()
    observations = record.of("Observation")
    all_shots = shots(record)
    info = admin(record)
    return Book(
        patient_id=patient_id, patient=record.patient, name=info.name, gender=info.gender, birth_date=info.birth_date,
        age=age(info.birth_date, today), national_id=info.national_id, admin=info,
        blood_group=_latest(observations, BLOOD_GROUP), height=_latest(observations, HEIGHT), weight=_latest(observations, WEIGHT),
        allergies=allergies(record), illnesses=illnesses(record), surgeries=surgeries(record), family=family(record),
        shots=all_shots, vaccines=vaccine_table(all_shots), visits=visits(record), appointments=appointments(record, now),
        medicines=current_medicines(record, today), series=series(record),
    )


# --- consents, data requests, the access log -----------------------------------------------------------


@dataclass(frozen=True)
class Grant:
    id: str
    organizations: tuple[str, ...]  # Organization ids; empty: every organization
    purposes: tuple[str, ...]
    start: str
    end: str
    given: str
    permit: bool
    status: str
    active: bool  # permits now


def grants(consents: Iterable[dict[str, Any]], patient_id: str, now: datetime) -> list[Grant]:
    out = []
    for c in consents:
        if ref_id(c.get("patient"), "Patient") != patient_id:
            continue
        provision = c.get("provision") or {}
        period = provision.get("period") or {}
        start, end = parse_when(period.get("start")), parse_when(period.get("end"))
        in_period = (start is None or start <= now) and (end is None or end > now)
        permit = provision.get("type") == "permit"
        orgs = tuple(i for a in provision.get("actor") or () if (i := ref_id(a.get("reference"), "Organization")))
        purposes = tuple(p.get("code") for p in provision.get("purpose") or () if p.get("code"))
        out.append(Grant(str(c.get("id")), orgs, purposes, str(period.get("start") or ""), str(period.get("end") or ""),
                         str(c.get("dateTime") or ""), permit, str(c.get("status") or ""), c.get("status") == "active" and permit and in_period))
    return sorted(out, key=lambda g: g.given, reverse=True)


@dataclass(frozen=True)
class Request:
    id: str
    kind: str  # correction | deletion
    status: str
    authored: str
    deadline: str
    description: str
    answer: str


def requests(tasks: Iterable[dict[str, Any]]) -> list[Request]:
    return [Request(str(t.get("id")), str(code_of(t.get("code")) or ""), str(t.get("status") or ""), str(t.get("authoredOn") or ""),
                    str(((t.get("restriction") or {}).get("period") or {}).get("end") or ""), str(t.get("description") or ""),
                    str((t.get("statusReason") or {}).get("text") or ""))
            for t in tasks]


@dataclass(frozen=True)
class Access:
    when: str
    principal: str  # staff:<account>, system:<client>, patient:<account>, operator:..., server
    organization: str | None  # Organization id
    action: str  # read, search, everything, create, update, delete, break-glass, or the server's action code
    resource_type: str | None
    reason: str  # break-glass: the emergency reason
    denied: bool
    basis: str = ""  # a check-in: why the facility could (check-in, consent, break-glass)

    @property
    def kind(self) -> str:
        return self.principal.split(":", 1)[0]

    @property
    def account(self) -> str:
        return self.principal.split(":", 1)[1] if ":" in self.principal else ""

    @property
    def emergency(self) -> bool:
        return self.action == "break-glass" or self.basis == "break-glass"

    @property
    def under_consent(self) -> bool:
        return self.basis in ("consent", "paper-consent")


_SUBTYPE_ACTIONS = {"search-type": "search", "history-instance": "history", "operation": "everything"}


def access_entry(event: dict[str, Any]) -> Access:
    """One AuditEvent (as the audit trail serves it) as the patient reads it."""
    principal = organization = ""
    for agent in event.get("agent") or ():
        who = agent.get("who") or {}
        if agent.get("requestor"):
            principal = str((who.get("identifier") or {}).get("value") or "")
        elif ref_id(who, "Organization"):
            organization = str(ref_id(who, "Organization"))
    kind = event.get("type") or {}
    if kind.get("code") == "rest":
        subtype = str(((event.get("subtype") or [{}])[0]).get("code") or "")
        action = _SUBTYPE_ACTIONS.get(subtype, subtype)
    elif kind.get("code") == "110113":
        action = "break-glass"
    elif kind.get("code") == "110114":
        action = "login"
    else:
        action = str(kind.get("code") or "")
    resource_type = None
    reason = basis = ""
    for entity in event.get("entity") or ():
        what = entity.get("what") or {}
        if (entity.get("type") or {}).get("code") == "2":
            resource_type = str(what.get("display") or (what.get("reference") or "").split("/")[0]) or None
        for detail in entity.get("detail") or ():
            if detail.get("type") == "emergency-reason":
                reason = str(detail.get("valueString") or "")
            elif detail.get("type") == "care-basis":
                basis = str(detail.get("valueString") or "")
    if resource_type is None and action in ("read", "vread", "history", "create", "update", "patch", "delete"):
        resource_type = "Patient"  # an interaction on the Patient itself names only the patient
    return Access(str(event.get("recorded") or ""), principal, organization or None, action, resource_type, reason,
                  event.get("outcome") not in (None, "0"), basis)


@dataclass(frozen=True)
class AccessGroup:
    """Consecutive records of one principal doing one kind of thing within a few minutes (a visit
    being recorded writes a dozen resources): one line of the access log."""

    latest: Access
    earliest_when: str
    count: int
    resource_types: tuple[str, ...]


def group_accesses(entries: Iterable[Access], window_seconds: int = 600) -> list[AccessGroup]:
    """Entries newest first in, groups newest first out; emergencies and refusals stay on their own."""
    groups: list[list[Access]] = []
    for entry in entries:
        if groups:
            head = groups[-1][0]
            start, here = parse_when(head.when), parse_when(entry.when)
            same = (entry.principal, entry.organization, entry.action, entry.denied) == (head.principal, head.organization, head.action, head.denied)
            if same and not entry.emergency and start and here and (start - here).total_seconds() <= window_seconds:
                groups[-1].append(entry)
                continue
        groups.append([entry])
    return [AccessGroup(g[0], g[-1].when, len(g), tuple(dict.fromkeys(e.resource_type for e in g if e.resource_type))) for g in groups]

