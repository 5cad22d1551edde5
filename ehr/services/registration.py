"""Registering a patient at the front desk: Patient, BHYT Coverage and legal representative in one
transaction; a citizen ID that is already registered opens the existing record instead.

The desk has the patient and their card in front of it, so an existing registration is taken into
the facility's care (`care.check_in`, audited) rather than duplicated. Two desks registering the
same CCCD at once cannot make two patients: the store allows one active Patient per CCCD (409),
and the loser checks the patient in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ehr.fhir import jsonio, registration
from ehr.fhir.outcomes import FhirError, Issue
from ehr.identity import rules
from ehr.services import bundles, care, resources, search
from ehr.services import rules as service_rules
from ehr.services.context import AccessContext
from ehr.store.runtime import Store


@dataclass
class Registered:
    patient_id: str
    existing: bool  # the CCCD was registered already: its record was opened
    warnings: list[str] = field(default_factory=list)  # codes of identifier warnings (cccd-sex, ...)


def warnings(form: dict[str, Any]) -> list[str]:
    """Codes of the CCCD-structure warnings (birth year, century, sex, province) for this form."""
    number = rules.check_cccd(form["cccd"])
    return [w.code for w in rules.cccd_warnings(number, form["birth_date"].isoformat(), form.get("gender"))]


def _existing(store: Store, ctx: AccessContext, number: str) -> str | None:
    try:
        return care.check_in(store, ctx, number)
    except FhirError as exc:
        if exc.status == 404:
            return None
        raise


def register(store: Store, ctx: AccessContext, form: dict[str, Any]) -> Registered:
    number = rules.check_cccd(form["cccd"])
    found = _existing(store, ctx, number)
    if found:
        return Registered(found, existing=True)
    urn = "urn:uuid:patient"
    entries: list[dict[str, Any]] = [{"fullUrl": urn, "resource": registration.patient(form, store.systems), "request": {"method": "POST", "url": "Patient"}}]
    if form.get("bhyt"):
        classes = service_rules.coverage_classes(rules.parse_bhyt(form["bhyt"]))
        entries.append({"resource": registration.coverage(form["bhyt"], urn, store.systems, classes), "request": {"method": "POST", "url": "Coverage"}})
    if form.get("rep_name") and form.get("rep_relationship"):
        entries.append({"resource": registration.related_person(form["rep_name"], form["rep_relationship"], form.get("rep_phone"), urn),
                        "request": {"method": "POST", "url": "RelatedPerson"}})
    try:
        responses = bundles.transaction(store, ctx, {"resourceType": "Bundle", "type": "transaction", "entry": entries}, representation=False)
    except FhirError as exc:
        if exc.status == 409:  # registered a moment ago at another desk
            found = _existing(store, ctx, number)
            if found:
                return Registered(found, existing=True)
        raise
    patient_id = (responses[0].location or "").split("/")[1]
    return Registered(patient_id, existing=False, warnings=warnings(form))


def check_fields(issue: Issue) -> str | None:
    """The form field an OperationOutcome issue of a registration points at, if any."""
    where = " ".join(issue.expression or ())
    for marker, name in (("Patient.identifier", "cccd"), ("Coverage", "bhyt"), ("telecom", "phone"), ("birthDate", "birth_date")):
        if marker in where:
            return name
    return None


@dataclass
class Card:
    """A registered patient as the desk edits them: the Patient, the BHYT card and representative."""
    patient: dict[str, Any]
    version: str
    coverage: dict[str, Any] | None
    representative: dict[str, Any] | None


def card(store: Store, ctx: AccessContext, patient_id: str) -> Card:
    """404 (FhirError) when the patient is not visible to the context."""
    found = resources.read(store, ctx, "Patient", patient_id)
    doc = jsonio.loads_stored(found.body or b"{}")
    doc["id"] = patient_id

    def first(rtype: str, param: str) -> dict[str, Any] | None:
        page = search.search(store, ctx, rtype, [(param, f"Patient/{patient_id}"), ("_count", "10")])
        docs = [jsonio.loads_stored(v.body or b"{}") for v, mode in page.entries if mode == "match"]
        docs = [d for d in docs if d.get("status", "active") == "active" and d.get("active", True)]
        return docs[0] if docs else None

    return Card(doc, str(found.version_id), first("Coverage", "beneficiary"), first("RelatedPerson", "patient"))


def correct(store: Store, ctx: AccessContext, patient_id: str, form: dict[str, Any]) -> list[str]:
    """The desk's correction of a registered patient: new versions of the Patient, BHYT Coverage and
    representative in one transaction (the Patient with If-Match, so a concurrent edit is not
    overwritten); a removed card is cancelled, not deleted. Returns identifier warning codes."""
    current = card(store, ctx, patient_id)
    ref = f"Patient/{patient_id}"
    entries: list[dict[str, Any]] = [{
        "resource": registration.corrected_patient(current.patient, form, store.systems),
        "request": {"method": "PUT", "url": ref, "ifMatch": f'W/"{current.version}"'},
    }]
    if form.get("bhyt"):
        classes = service_rules.coverage_classes(rules.parse_bhyt(form["bhyt"]))
        coverage = registration.coverage(form["bhyt"], ref, store.systems, classes)
        entries.append(_put_or_post(coverage, current.coverage))
    elif current.coverage:
        entries.append(_put_or_post({**current.coverage, "status": "cancelled"}, current.coverage))
    if form.get("rep_name") and form.get("rep_relationship"):
        person = registration.related_person(form["rep_name"], form["rep_relationship"], form.get("rep_phone"), ref)
        entries.append(_put_or_post(person, current.representative))
    elif current.representative:
        entries.append(_put_or_post({**current.representative, "active": False}, current.representative))
    bundles.transaction(store, ctx, {"resourceType": "Bundle", "type": "transaction", "entry": entries}, representation=False)
    return warnings(form)


def _put_or_post(doc: dict[str, Any], existing: dict[str, Any] | None) -> dict[str, Any]:
    doc = {k: v for k, v in doc.items() if k != "meta"}
    if existing and existing.get("id"):
        doc["id"] = existing["id"]
        return {"resource": doc, "request": {"method": "PUT", "url": f"{doc['resourceType']}/{existing['id']}"}}
    return {"resource": doc, "request": {"method": "POST", "url": doc["resourceType"]}}


def form_values(store: Store, current: Card) -> dict[str, str]:
    """The registration form's fields for this patient, for the desk to correct."""
    return registration.form_values(current.patient, current.coverage, current.representative, store.systems)
