"""What the printed papers show, gathered through the services every page uses (so the signed-in
context's policy, the facility gates and the audit trail apply exactly as to any read).

- `visit_paper`: the outpatient prescription (đơn thuốc), the visit summary and the lab result
  sheet of one visit. Each paper needs its own part of the record: a context that may not search
  MedicationRequest (a receptionist) gets no prescription (`Denied`, 403), one that may not search
  Observation no lab sheet, one that may not search Condition no visit summary.
- `activation_slip`: the health-book activation slip of the one-time code the chart page has just
  shown, posted back by that page: the store holds only the code's keyed hash, so the slip is
  printed only when the code is this patient's live one (see ehr/clinic/papers.py).

Nothing here formats for a language: codes stay codes, dates stay ISO; ehr.papers and the routes
turn them into the page's language.
"""

from __future__ import annotations

import hmac
import html
import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from ehr.fhir import corrections, jsonio
from ehr.fhir.healthbook import name_of, text_of
from ehr.fhir.outcomes import FhirError
from ehr.fhir.terminology import ICD10, LOINC
from ehr.services import accounts, chart, policy, registration, resources
from ehr.services.context import AccessContext
from ehr.store import access
from ehr.store.access import INTERNAL
from ehr.store.runtime import Store

KINDS = ("prescription", "summary", "lab")
# The part of the record each paper shows: the type the context must be allowed to search.
NEEDS = {"prescription": "MedicationRequest", "summary": "Condition", "lab": "Observation"}


@dataclass(frozen=True)
class Facility:
    name: str
    code: str  # mã cơ sở khám chữa bệnh (5 digits), "" when the operators set none
    address: str
    phone: str


@dataclass(frozen=True)
class Person:
    patient_id: str
    name: str
    birth_date: str  # ISO
    gender: str  # FHIR code
    address: str
    cccd: str
    bhyt: str
    bhyt_until: str  # ISO, "" when unknown
    phone: str
    representative: str  # a child's legal representative (name), "" for none


@dataclass(frozen=True)
class Drug:
    name: str
    dose: Decimal | None
    dose_unit: str
    route: str  # SNOMED CT code of the route, "" when not recorded
    route_display: str
    frequency: int | None  # times a day
    days: int | None
    quantity: Decimal | None
    directions: str


@dataclass(frozen=True)
class Result:
    loinc: str
    name: str
    value: str
    value_code: str  # the answer's code (LOINC), "" for a quantity
    unit: str
    low: str
    high: str
    text_range: str
    when: str  # ISO


@dataclass
class VisitPaper:
    facility: Facility
    patient: Person
    encounter_id: str
    started: str  # ISO dateTime
    reason: str
    status: str
    diagnoses: list[tuple[str, str]] = field(default_factory=list)  # (ICD-10 code, name), main diagnosis first
    drugs: list[Drug] = field(default_factory=list)
    vitals: list[dict[str, Any]] = field(default_factory=list)
    results: list[Result] = field(default_factory=list)
    note: str = ""
    advice: str = ""
    revisit: str = ""  # ISO date
    prescriber: str = ""
    licence: str = ""
    signed: bool = False


def _wrong(doc: dict[str, Any]) -> bool:
    if doc.get("status") == "entered-in-error":
        return True
    codes = ((doc.get("verificationStatus") or {}).get("coding") or [{}])
    return codes[0].get("code") == "entered-in-error"


def _decimal(value: Any) -> Decimal | None:
    return Decimal(str(value)) if value is not None else None


def facility(store: Store, ctx: AccessContext) -> Facility:
    """The signed-in staff member's facility (directory entries are readable by every staff role)."""
    if not ctx.organization:
        return Facility("", "", "", "")
    try:
        doc = jsonio.loads_stored(resources.read(store, ctx, "Organization", ctx.organization).body or b"{}")
    except FhirError:
        return Facility("", "", "", "")
    code = next((str(i.get("value")) for i in doc.get("identifier") or [] if i.get("system") == store.systems.facility), "")
    address = (doc.get("address") or [{}])[0]
    phone = next((str(t.get("value")) for t in doc.get("telecom") or [] if t.get("system") == "phone"), "")
    return Facility(str(doc.get("name") or ""), code, str(address.get("text") or ", ".join(address.get("line") or [])), phone)


def person(store: Store, ctx: AccessContext, patient_id: str) -> Person:
    """The patient with the BHYT card and representative (FhirError 404 when not visible)."""
    card = registration.card(store, ctx, patient_id)
    doc = card.patient
    name = name_of(doc)
    cccd = next((str(i.get("value")) for i in doc.get("identifier") or [] if i.get("system") == store.systems.cccd), "")
    bhyt, until = "", ""
    if card.coverage:
        bhyt = next((str(i.get("value")) for i in card.coverage.get("identifier") or [] if i.get("system") == store.systems.bhyt), "")
        until = str((card.coverage.get("period") or {}).get("end") or "")
    address = (doc.get("address") or [{}])[0]
    phone = next((str(t.get("value")) for t in doc.get("telecom") or [] if t.get("system") == "phone"), "")
    rep = card.representative
    return Person(patient_id, str(name), str(doc.get("birthDate") or ""), str(doc.get("gender") or ""),
                  str(address.get("text") or ", ".join(address.get("line") or [])), cccd, bhyt, until, phone,
                  text_of({"text": (rep.get("name") or [{}])[0].get("text")}) if rep else "")


def age(birth: str, on: date) -> tuple[int, int]:
    """(full years, full months) of age on a day; months matter for children under 72 months."""
    try:
        born = date.fromisoformat(birth[:10]) if len(birth) >= 10 else date(int(birth[:4]), 1, 1)
    except ValueError:
        return (0, 0)
    months = (on.year - born.year) * 12 + on.month - born.month - (1 if on.day < born.day else 0)
    months = max(months, 0)
    return months // 12, months


def _prescriber(store: Store, ctx: AccessContext, encounter: dict[str, Any], drugs: list[dict[str, Any]]) -> tuple[str, str]:
    """The prescribing doctor's name and practising-licence number, from their Practitioner."""
    refs = [str((d.get("requester") or {}).get("reference") or "") for d in drugs]
    refs += [str((p.get("individual") or {}).get("reference") or "") for p in encounter.get("participant") or []]
    for ref in refs:
        if not ref.startswith("Practitioner/"):
            continue
        try:
            doc = jsonio.loads_stored(resources.read(store, ctx, "Practitioner", ref.split("/", 1)[1]).body or b"{}")
        except FhirError:
            continue
        licence = next((str(i.get("value")) for i in doc.get("identifier") or [] if i.get("system") == store.systems.practitioner_licence), "")
        return name_of(doc), licence
    return "", ""


def _drug(doc: dict[str, Any]) -> Drug:
    dosage = (doc.get("dosageInstruction") or [{}])[0]
    repeat = (dosage.get("timing") or {}).get("repeat") or {}
    dose = ((dosage.get("doseAndRate") or [{}])[0].get("doseQuantity") or {})
    route = (dosage.get("route") or {}).get("coding") or [{}]
    dispense = doc.get("dispenseRequest") or {}
    days = (repeat.get("boundsDuration") or {}).get("value") or (dispense.get("expectedSupplyDuration") or {}).get("value")
    return Drug(
        name=text_of(doc.get("medicationCodeableConcept")), dose=_decimal(dose.get("value")), dose_unit=str(dose.get("unit") or ""),
        route=str(route[0].get("code") or ""), route_display=str(route[0].get("display") or ""),
        frequency=int(repeat["frequency"]) if repeat.get("frequency") is not None else None,
        days=int(days) if days is not None else None, quantity=_decimal((dispense.get("quantity") or {}).get("value")),
        directions=str(dosage.get("text") or ""),
    )


def _result(doc: dict[str, Any]) -> Result:
    coding = ((doc.get("code") or {}).get("coding") or [{}])[0]
    answer = ""
    if doc.get("valueQuantity"):
        q = doc["valueQuantity"]
        value, unit = str(q.get("value", "")), str(q.get("unit") or q.get("code") or "")
    elif doc.get("valueCodeableConcept"):
        value, unit = text_of(doc["valueCodeableConcept"]), ""
        answer = str(((doc["valueCodeableConcept"].get("coding") or [{}])[0]).get("code") or "")
    else:
        value = str(next((doc[k] for k in ("valueString", "valueInteger", "valueBoolean") if k in doc), ""))
        unit = ""
    ref = (doc.get("referenceRange") or [{}])[0]
    return Result(str(coding.get("code") or "") if coding.get("system") == LOINC else "", text_of(doc.get("code")), value, answer, unit,
                  str((ref.get("low") or {}).get("value", "")), str((ref.get("high") or {}).get("value", "")), str(ref.get("text") or ""),
                  str(doc.get("effectiveDateTime") or ""))


def _written_order(doc: dict[str, Any]) -> tuple[str, int]:
    """The order the form listed the items in ("<visit token>/prescription-2"), else the time."""
    idents = doc.get("identifier") or []
    value = str((idents[0] if isinstance(idents, list) and idents else idents or {}).get("value") or "")
    found = re.search(r"-(\d+)$", value)
    return str(doc.get("authoredOn") or ""), int(found.group(1)) if found else 0


def _laboratory(doc: dict[str, Any]) -> bool:
    return any(c.get("code") == "laboratory" for cat in doc.get("category") or [] for c in cat.get("coding") or [])


def visit_paper(store: Store, ctx: AccessContext, encounter_id: str, kind: str) -> VisitPaper:
    """One visit as the paper `kind` needs it. FhirError 404 when the visit is not visible to the
    context; policy.Denied (403) when the context may not read that paper's part of the record."""
    policy.authorize(ctx, "search", NEEDS[kind])
    encounter, items, signature = chart.visit(store, ctx, encounter_id)
    if encounter.get("status") == "entered-in-error":
        raise FhirError(404, "not-found", "the visit was cancelled (entered in error)")
    patient_id = ((encounter.get("subject") or {}).get("reference") or "/").split("/", 1)[1]
    live = [d for d in corrections.hidden(items) if not _wrong(d)]  # what was replaced or entered in error is not printed
    by_id = {f"{d.get('resourceType')}/{d.get('id')}": d for d in live}
    diagnoses: list[tuple[str, str]] = []
    for entry in sorted(encounter.get("diagnosis") or [], key=lambda e: e.get("rank", 99)):
        ref = str((entry.get("condition") or {}).get("reference") or "")
        doc = by_id.get(ref)
        coding = next((c for c in ((doc or {}).get("code") or {}).get("coding") or [] if c.get("system") == ICD10), None)
        if coding:
            diagnoses.append((str(coding.get("code")), str(coding.get("display") or "")))
        elif doc is None and (entry.get("condition") or {}).get("display"):  # an existing problem, named "CODE name"
            code, _sep, name = str(entry["condition"]["display"]).partition(" ")
            diagnoses.append((code, name))
    medication = sorted((d for d in live if d.get("resourceType") == "MedicationRequest"), key=_written_order)
    observations = [d for d in live if d.get("resourceType") == "Observation"]
    summary = next((d for d in live if d.get("resourceType") == "Composition"), None)
    sections = {((s.get("code") or {}).get("coding") or [{}])[0].get("code"): s for s in (summary or {}).get("section") or []}
    revisit = next((str(d.get("start", ""))[:10] for d in live if d.get("resourceType") == "Appointment"), "")
    prescriber, licence = _prescriber(store, ctx, encounter, medication)
    return VisitPaper(
        facility=facility(store, ctx), patient=person(store, ctx, patient_id), encounter_id=encounter_id,
        started=str((encounter.get("period") or {}).get("start") or ""), reason=text_of((encounter.get("reasonCode") or [{}])[0]),
        status=str(encounter.get("status") or ""), diagnoses=diagnoses, drugs=[_drug(d) for d in medication],
        vitals=[d for d in observations if not _laboratory(d)], results=[_result(d) for d in observations if _laboratory(d)],
        note=_divtext_of(sections.get("10164-2")), advice=_divtext_of(sections.get("69730-0")), revisit=revisit,
        prescriber=prescriber, licence=licence, signed=bool(signature),
    )


def _divtext_of(section: dict[str, Any] | None) -> str:
    """The plain text of a section's narrative (written by ehr.fhir.visit from typed text)."""
    if not section:
        return ""
    div = str((section.get("text") or {}).get("div") or "")
    return html.unescape(re.sub(r"<[^>]+>", "", re.sub(r"<br\s*/?>", "\n", div))).strip()


def slip_patient(store: Store, ctx: AccessContext, patient_id: str) -> Person:
    """The patient on the activation slip (FhirError 404 when not visible to the context)."""
    return person(store, ctx, patient_id)


@dataclass(frozen=True)
class Slip:
    patient: Person
    code: str  # as the page showed it; checked, never stored
    expires: int  # µs since the epoch


def activation_slip(store: Store, ctx: AccessContext, patient_id: str, code: str, *, now: int) -> Slip | None:
    """The activation slip of a code the clinic page has just shown for this patient.

    The code is stored only as a keyed hash: the page that showed it posts it back, and it is
    printed only when it is this patient's live code (not used, not expired); None otherwise, so
    the slip cannot carry a made-up or stale code. FhirError 404 when the patient is not visible."""
    who = person(store, ctx, patient_id)
    if not who.cccd or not code:
        return None
    with store.reading(INTERNAL) as uow:
        row = access.account_by(uow, national_id_hash=accounts.national_id_token(store, who.cccd))
    if row is None or row["password_hash"] is not None or row["patient_id"] != patient_id or not row["activation_hash"]:
        return None
    if not hmac.compare_digest(bytes(row["activation_hash"]), accounts.activation_token(store, code)):
        return None
    if not row["activation_expires"] or row["activation_expires"] <= now:
        return None
    return Slip(who, code.strip().upper(), int(row["activation_expires"]))
