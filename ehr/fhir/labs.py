"""Laboratory orders and results as standard FHIR R4 resources (pure; no Flask, no database).

An order is a ServiceRequest (category laboratory, SNOMED CT 108252007) coded with the clinic's lab
catalogue (its system and version label) and, when the catalogue gives one, LOINC. A result is an
Observation with the catalogue's UCUM unit and reference range, interpreted H / L / N
(v3-ObservationInterpretation), `basedOn` its order; the results entered together are one
DiagnosticReport (v2-0074 LAB) that lists them.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from ehr.fhir.terminology import LOINC, OBSERVATION_CATEGORY, SNOMED, UCUM

INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
REPORT_CATEGORY = "http://terminology.hl7.org/CodeSystem/v2-0074"
LAB_PROCEDURE = {"system": SNOMED, "code": "108252007", "display": "Laboratory procedure"}
_FLAGS = {"H": "High", "L": "Low", "N": "Normal"}


@dataclass(frozen=True)
class Test:
    """A test of the lab catalogue: its Coding (system, version, code, display), unit and range."""
    coding: dict[str, str]
    unit: str | None = None
    low: Decimal | None = None
    high: Decimal | None = None
    loinc: str | None = None


def number(text: str) -> Decimal:
    """A typed value with a decimal comma or point ("7,8" or "7.8"); ValueError otherwise."""
    try:
        value = Decimal(str(text).strip().replace(",", "."))
    except InvalidOperation:
        raise ValueError("not a number") from None
    if not value.is_finite():
        raise ValueError("not a number")
    return value


def flag(value: Decimal, low: Decimal | None, high: Decimal | None) -> str:
    """H above the range, L below it, N within it."""
    if high is not None and value > high:
        return "H"
    if low is not None and value < low:
        return "L"
    return "N"


def code(test: Test) -> dict[str, Any]:
    codings: list[dict[str, Any]] = [dict(test.coding)]
    if test.loinc:
        codings.append({"system": LOINC, "code": test.loinc})
    return {"coding": codings, "text": test.coding.get("display", "")}


def _lab_category() -> list[dict[str, Any]]:
    return [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "laboratory", "display": "Laboratory"}]}]


def service_request(test: Test, *, patient_id: str, encounter_id: str, practitioner: dict[str, Any] | None,
                    authored: str) -> dict[str, Any]:
    request: dict[str, Any] = {
        "resourceType": "ServiceRequest", "status": "active", "intent": "order",
        "category": [{"coding": [LAB_PROCEDURE]}], "code": code(test),
        "subject": {"reference": f"Patient/{patient_id}"}, "encounter": {"reference": f"Encounter/{encounter_id}"},
        "authoredOn": authored,
    }
    if practitioner:
        request["requester"] = practitioner
    return request


def _quantity(value: Decimal, unit: str | None) -> dict[str, Any]:
    return {"value": value, **({"unit": unit, "system": UCUM, "code": unit} if unit else {})}


def observation(test: Test, value: Decimal, *, request: dict[str, Any], performers: list[dict[str, Any]],
                effective: str) -> dict[str, Any]:
    """The result of `request` (a stored ServiceRequest, with its id)."""
    obs: dict[str, Any] = {
        "resourceType": "Observation", "status": "final", "category": _lab_category(), "code": code(test),
        "basedOn": [{"reference": f"ServiceRequest/{request['id']}"}],
        "subject": request["subject"], "encounter": request["encounter"], "effectiveDateTime": effective,
        "performer": performers, "valueQuantity": _quantity(value, test.unit),
    }
    if test.low is not None or test.high is not None:
        obs["referenceRange"] = [{
            **({"low": _quantity(test.low, test.unit)} if test.low is not None else {}),
            **({"high": _quantity(test.high, test.unit)} if test.high is not None else {}),
        }]
        mark = flag(value, test.low, test.high)
        obs["interpretation"] = [{"coding": [{"system": INTERPRETATION, "code": mark, "display": _FLAGS[mark]}]}]
    return obs


def report(tests: list[Test], results: list[str], requests: list[dict[str, Any]], *, performers: list[dict[str, Any]],
           issued: str) -> dict[str, Any]:
    """One DiagnosticReport of the results entered together (`results`: their references)."""
    first = requests[0]
    concept = code(tests[0]) if len(tests) == 1 else {
        "coding": [{"system": LOINC, "code": "11502-2", "display": "Laboratory report"}], "text": "Phiếu kết quả xét nghiệm"}
    return {
        "resourceType": "DiagnosticReport", "status": "final",
        "category": [{"coding": [{"system": REPORT_CATEGORY, "code": "LAB", "display": "Laboratory"}]}],
        "code": concept, "basedOn": [{"reference": f"ServiceRequest/{r['id']}"} for r in requests],
        "subject": first["subject"], "encounter": first["encounter"], "effectiveDateTime": issued, "issued": issued,
        "performer": performers, "result": [{"reference": ref} for ref in results],
    }


def interpretation(obs: dict[str, Any]) -> str | None:
    """H, L or N of a result (None when it has none)."""
    for concept in obs.get("interpretation") or ():
        for coding in (concept or {}).get("coding") or ():
            if coding.get("system") == INTERPRETATION and coding.get("code") in _FLAGS:
                return str(coding["code"])
    return None
