"""An unsigned visit's resources read back into the visit form's fields, for editing it.

The inverse of `ehr.fhir.visit` for what the form writes; items entered in error are left out.
Numbers keep the stored decimal text; dates are shown dd/mm/yyyy as the form takes them.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from ehr.fhir import corrections
from ehr.fhir.visit import BLOOD_GROUP_LOINC
from ehr.fhir.terminology import ICD10, VITAL_SIGNS

_BY_LOINC = {s.loinc: key for key, s in VITAL_SIGNS.items() if key not in ("bp", "bmi")}
_NOTE, _ADVICE = "10164-2", "69730-0"


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _day(text: str | None) -> str:
    try:
        return date.fromisoformat(str(text)[:10]).strftime("%d/%m/%Y") if text else ""
    except ValueError:
        return ""


def _code(concept: dict[str, Any] | None, system: str | None = None) -> str:
    for coding in (concept or {}).get("coding") or []:
        if system is None or coding.get("system") == system:
            return _text(coding.get("code"))
    return ""


def _div_text(div: str) -> str:
    inner = re.sub(r"^<div[^>]*>|</div>$", "", div or "")
    inner = inner.replace("<br/>", "\n")
    return inner.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def values_of(encounter: dict[str, Any], items: list[dict[str, Any]]) -> dict[str, str]:
    """Form values (`name` -> text) for the visit's current items."""
    values: dict[str, str] = {"class_code": _code(encounter.get("class") and {"coding": [encounter["class"]]}) or "AMB"}
    reasons = encounter.get("reasonCode") or []
    values["reason"] = _text(reasons[0].get("text")) if reasons else ""
    counters: dict[str, int] = {}

    def row(prefix: str, **fields: str) -> None:
        i = counters.get(prefix, 0)
        counters[prefix] = i + 1
        for name, text in fields.items():
            values[f"{prefix}-{i}-{name}"] = text

    ranked = sorted(encounter.get("diagnosis") or [], key=lambda d: d.get("rank") or 99)
    by_ref = {f"{d['resourceType']}/{d.get('id')}": d for d in items}
    for entry in ranked:
        ref = entry.get("condition") or {}
        condition = by_ref.get(ref.get("reference", ""))
        if condition is not None and not corrections.is_error(condition):
            row("dx", code=_code(condition.get("code"), ICD10))
        elif condition is None and ref.get("display"):  # the patient's existing problem, named by code
            row("dx", code=str(ref["display"]).split(" ", 1)[0])
    for doc in items:
        if corrections.is_error(doc):
            continue
        kind = doc.get("resourceType")
        if kind == "Observation":
            code = _code(doc.get("code"))
            if code == VITAL_SIGNS["bp"].loinc:
                for comp in doc.get("component") or []:
                    key = _BY_LOINC.get(_code(comp.get("code")))
                    if key:
                        values[key] = _text((comp.get("valueQuantity") or {}).get("value"))
            elif code in _BY_LOINC:
                values[_BY_LOINC[code]] = _text((doc.get("valueQuantity") or {}).get("value"))
            elif code == BLOOD_GROUP_LOINC:
                values["blood_group"] = _code(doc.get("valueCodeableConcept"))
        elif kind == "MedicationRequest":
            dosage = (doc.get("dosageInstruction") or [{}])[0]
            repeat = (dosage.get("timing") or {}).get("repeat") or {}
            dose = ((dosage.get("doseAndRate") or [{}])[0].get("doseQuantity") or {})
            row("rx", drug=_text((doc.get("medicationCodeableConcept") or {}).get("text")), dose=_text(dose.get("value")),
                unit=_text(dose.get("unit")), route=_code(dosage.get("route")), frequency=_text(repeat.get("frequency")),
                days=_text((repeat.get("boundsDuration") or {}).get("value")),
                quantity=_text(((doc.get("dispenseRequest") or {}).get("quantity") or {}).get("value")),
                instructions=_text(dosage.get("text")))
        elif kind == "AllergyIntolerance":
            reaction = ((doc.get("reaction") or [{}])[0].get("manifestation") or [{}])[0]
            row("al", substance=_text((doc.get("code") or {}).get("text")), criticality=_text(doc.get("criticality")),
                reaction=_text(reaction.get("text")))
        elif kind == "Immunization":
            row("im", vaccine=_code(doc.get("vaccineCode")), lot=_text(doc.get("lotNumber")), site=_code(doc.get("site")),
                date=_day(doc.get("occurrenceDateTime")))
        elif kind == "Procedure":
            row("pr", text=_text((doc.get("code") or {}).get("text")), date=_day(doc.get("performedDateTime")))
        elif kind == "FamilyMemberHistory":
            row("fh", relationship=_code(doc.get("relationship")),
                condition=_text(((doc.get("condition") or [{}])[0].get("code") or {}).get("text")))
        elif kind == "Composition":
            for section in doc.get("section") or []:
                code = _code(section.get("code"))
                if code in (_NOTE, _ADVICE):
                    values["note" if code == _NOTE else "advice"] = _div_text((section.get("text") or {}).get("div", ""))
        elif kind == "Appointment":
            values["revisit"] = _day(doc.get("start"))
    return values


def replaced(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The items an edit supersedes: every current one the form wrote (not yet in error)."""
    return [d for d in items if not corrections.is_error(d)]
