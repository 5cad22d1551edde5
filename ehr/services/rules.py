"""Business rules of this server, applied to every write after FHIR validation.

A broken rule answers 422 naming the element; structural doubts come back as warnings in an
OperationOutcome beside the stored resource. Rules by identifier system (configurable URIs,
`ehr.identity.systems`): CCCD 12 digits (+ structure warnings against birthDate and gender),
CMND 9 or 12 digits, BHYT in its three forms (group and benefit level agreeing with
Coverage.class), BHXH 10 digits, facility code 5 digits, temporary ids never CCCD-shaped.
Consents carry their proof (`check_consent`).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from ehr.fhir.outcomes import FhirError, Issue
from ehr.identity import rules
from ehr.identity.systems import IdentifierSystems

COVERAGE_CLASS = "http://terminology.hl7.org/CodeSystem/coverage-class"


def _identifiers(doc: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    raw = doc.get("identifier")
    items = raw if isinstance(raw, list) else [raw] if isinstance(raw, dict) else []
    return [(i, item) for i, item in enumerate(items) if isinstance(item, dict) and isinstance(item.get("value"), str)]


def _fail(rtype: str, i: int, exc: rules.IdentifierError) -> FhirError:
    return FhirError(422, [Issue("business-rule", str(exc), expression=(f"{rtype}.identifier[{i}].value",))])


def is_active_identifier(identifier: dict[str, Any], today: date) -> bool:
    if identifier.get("use") == "old":
        return False
    end = (identifier.get("period") or {}).get("end")
    return not (isinstance(end, str) and end[:10] < today.isoformat())


def is_active_patient(doc: dict[str, Any]) -> bool:
    if doc.get("active") is False:
        return False
    return not any(link.get("type") == "replaced-by" for link in doc.get("link") or () if isinstance(link, dict))


def national_ids(doc: dict[str, Any], systems: IdentifierSystems, today: date | None = None) -> list[str]:
    """The active CCCD numbers an active Patient claims (at most one Patient may claim each)."""
    if doc.get("resourceType") != "Patient" or not is_active_patient(doc):
        return []
    today = today or date.today()
    out = []
    for _, ident in _identifiers(doc):
        if ident.get("system") == systems.cccd and is_active_identifier(ident, today):
            try:
                out.append(rules.check_cccd(ident["value"]))
            except rules.IdentifierError:
                continue  # reported by check()
    return sorted(set(out))


def check_consent(doc: dict[str, Any]) -> None:
    """Proof of consent (Law 91/2025 Art. 9, Decree 356/2025 Art. 6): when it was given
    (`dateTime`), by whom (`performer`), which text the patient agreed to (`policy.uri` naming the
    versioned consent text, or the signed form as `sourceAttachment`/`sourceReference`), for which
    purposes (`provision.purpose`: per purpose, never a blanket default) and whether it permits or
    denies (`provision.type`: stated, never implied)."""
    def fail(message: str, at: str) -> FhirError:
        return FhirError(422, [Issue("business-rule", message, expression=(at,))])

    if not doc.get("dateTime"):
        raise fail("a Consent records when it was given (dateTime)", "Consent.dateTime")
    if not doc.get("performer"):
        raise fail("a Consent records who gave it (performer: the patient or their representative)", "Consent.performer")
    if not (any(isinstance(p, dict) and p.get("uri") for p in doc.get("policy") or ()) or doc.get("sourceAttachment") or doc.get("sourceReference")):
        raise fail("a Consent records which text was agreed to (policy.uri of the versioned text, or the signed form)", "Consent.policy")
    provision = doc.get("provision") if isinstance(doc.get("provision"), dict) else {}
    if provision.get("type") not in ("permit", "deny"):
        raise fail("a Consent states whether it permits or denies (provision.type)", "Consent.provision.type")
    if not provision.get("purpose"):
        raise fail("a Consent is given per purpose of use (provision.purpose, e.g. TREAT)", "Consent.provision.purpose")


def check(rtype: str, doc: dict[str, Any], systems: IdentifierSystems) -> list[Issue]:
    """Raise 422 on a broken rule; return warnings (severity warning) otherwise."""
    if rtype == "Consent":
        check_consent(doc)
    warnings: list[rules.Warning] = []
    where: list[str] = []
    for i, ident in _identifiers(doc):
        system, value = ident.get("system"), ident["value"]
        try:
            if system == systems.cccd:
                number = rules.check_cccd(value)
                if rtype == "Patient":
                    found = rules.cccd_warnings(number, doc.get("birthDate"), doc.get("gender"))
                    warnings += found
                    where += [f"{rtype}.identifier[{i}].value"] * len(found)
            elif system == systems.cmnd:
                rules.check_cmnd(value)
            elif system == systems.temporary:
                rules.check_temporary(value)
            elif system == systems.bhxh:
                rules.check_bhxh(value)
            elif system == systems.facility:
                code = rules.check_facility(value)
                found = rules.facility_warnings(code)
                warnings += found
                where += [f"{rtype}.identifier[{i}].value"] * len(found)
            elif system == systems.bhyt:
                card = rules.parse_bhyt(value)
                found = rules.bhyt_warnings(card)
                warnings += found
                where += [f"{rtype}.identifier[{i}].value"] * len(found)
                if rtype == "Coverage":
                    _check_coverage_classes(doc, card)
        except rules.IdentifierError as exc:
            raise _fail(rtype, i, exc) from None
    return [Issue("business-rule", w.message, severity="warning", expression=(at,)) for w, at in zip(warnings, where)]


def _check_coverage_classes(doc: dict[str, Any], card: rules.BhytCard) -> None:
    """Coverage.class 'group' = beneficiary group, 'class' = benefit level; they must match the card."""
    if card.form != "legacy15":
        return
    expected = {"group": card.group, "class": card.benefit_level}
    for i, item in enumerate(doc.get("class") or ()):
        codes = {c.get("code") for c in ((item.get("type") or {}).get("coding") or ()) if c.get("system") == COVERAGE_CLASS}
        for kind, wanted in expected.items():
            if kind in codes and item.get("value") != wanted:
                raise FhirError(422, [Issue("business-rule", f"Coverage.class '{kind}' does not match the BHYT card code", expression=(f"Coverage.class[{i}].value",))])


def coverage_classes(card: rules.BhytCard) -> list[dict[str, Any]]:
    """Coverage.class entries for a legacy card: beneficiary group and benefit level as codes."""
    if card.form != "legacy15":
        return []
    return [
        {"type": {"coding": [{"system": COVERAGE_CLASS, "code": "group"}]}, "value": card.group, "name": "Mã đối tượng"},
        {"type": {"coding": [{"system": COVERAGE_CLASS, "code": "class"}]}, "value": card.benefit_level, "name": "Mức hưởng"},
    ]
