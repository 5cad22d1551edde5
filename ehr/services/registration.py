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

from ehr.fhir import registration
from ehr.fhir.outcomes import FhirError, Issue
from ehr.identity import rules
from ehr.services import bundles, care
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
