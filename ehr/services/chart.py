"""The patient chart as the clinic sees it: one call gathering the record through search (so the
policy, the gates and the audit trail apply exactly as on the API)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ehr.crypto.blind import fold_text
from ehr.fhir import corrections, jsonio
from ehr.fhir.terminology import ICD10
from ehr.services import policy, resources, search
from ehr.services.context import AccessContext
from ehr.store.runtime import Store

VITAL_CODES = ("85354-9", "8867-4", "8310-5", "59408-5", "9279-1", "8302-2", "29463-7", "39156-5")


@dataclass
class Chart:
    patient: dict[str, Any]
    encounters: list[dict[str, Any]] = field(default_factory=list)
    problems: list[dict[str, Any]] = field(default_factory=list)
    allergies: list[dict[str, Any]] = field(default_factory=list)
    medications: list[dict[str, Any]] = field(default_factory=list)
    immunizations: list[dict[str, Any]] = field(default_factory=list)
    vitals: list[dict[str, Any]] = field(default_factory=list)
    labs: list[dict[str, Any]] = field(default_factory=list)  # laboratory Observations (lab results, blood group)
    shown: frozenset[str] = frozenset()  # types the context may search (a receptionist sees less)


def _find(store: Store, ctx: AccessContext, rtype: str, params: list[tuple[str, str]]) -> list[dict[str, Any]]:
    if not policy.may(ctx, "search", rtype):
        return []  # not this role's part of the record
    page = search.search(store, ctx, rtype, [*params, ("_count", "100")])
    return [jsonio.loads_stored(v.body or b"{}") for v, mode in page.entries if mode == "match"]


def _unique(docs: list[dict[str, Any]], key: Any) -> list[dict[str, Any]]:
    seen: set[str] = set()
    out = []
    for doc in docs:
        k = key(doc)
        if k and k in seen:
            continue
        seen.add(k)
        out.append(doc)
    return out


def _code_key(doc: dict[str, Any]) -> str:
    codings = (doc.get("code") or {}).get("coding") or [{}]
    return str(codings[0].get("code") or fold_text(str((doc.get("code") or {}).get("text") or "")))


def _text_key(element: str) -> Any:
    return lambda doc: fold_text(str((doc.get(element) or {}).get("text") or ""))


def patient(store: Store, ctx: AccessContext, patient_id: str) -> dict[str, Any]:
    return jsonio.loads_stored(resources.read(store, ctx, "Patient", patient_id).body or b"{}")


def chart(store: Store, ctx: AccessContext, patient_id: str) -> Chart:
    """404 (as FhirError) when the patient is not visible to the context."""
    patient_doc = patient(store, ctx, patient_id)
    who = [("patient", patient_id)]
    types = ("Encounter", "Condition", "AllergyIntolerance", "MedicationRequest", "Immunization", "Observation")
    return Chart(
        shown=frozenset(t for t in types if policy.may(ctx, "search", t)),
        patient=patient_doc,
        encounters=_find(store, ctx, "Encounter", [*who, ("_sort", "-date")]),
        # Lists leave out what was entered in error; the visits list shows cancelled visits as such.
        # One entry per problem, allergen and medicine: the newest, when older records repeat it.
        problems=_unique(_find(store, ctx, "Condition", [*who, ("clinical-status", "active"), ("_sort", "-recorded-date")]), _code_key),
        allergies=_unique(_find(store, ctx, "AllergyIntolerance", [*who, ("clinical-status", "active")]), _text_key("code")),
        medications=_unique(_find(store, ctx, "MedicationRequest", [*who, ("status", "active"), ("_sort", "-authoredon")]),
                            _text_key("medicationCodeableConcept")),
        immunizations=corrections.hidden(_find(store, ctx, "Immunization", [*who, ("_sort", "-date")])),
        vitals=corrections.hidden(_find(store, ctx, "Observation", [*who, ("code", ",".join(f"http://loinc.org|{c}" for c in VITAL_CODES)),
                                                                  ("_sort", "-date")])),
        labs=corrections.hidden(_find(store, ctx, "Observation", [*who, ("category", "laboratory"), ("_sort", "-date")])),
    )


def visit(store: Store, ctx: AccessContext, encounter_id: str) -> tuple[dict[str, Any], list[dict[str, Any]], str | None]:
    """The Encounter, the resources that reference it, and its signature Provenance id (if signed)."""
    encounter = resources.read(store, ctx, "Encounter", encounter_id)
    doc = jsonio.loads_stored(encounter.body or b"{}")
    patient_id = ((doc.get("subject") or {}).get("reference") or "/").split("/", 1)[1]
    items: list[dict[str, Any]] = []
    ref = f"Encounter/{encounter_id}"
    for rtype in ("Observation", "Condition", "MedicationRequest", "Procedure"):
        items += _find(store, ctx, rtype, [("encounter", ref)])
    for rtype in ("AllergyIntolerance", "Immunization", "Composition", "Appointment", "FamilyMemberHistory"):
        items += [d for d in _find(store, ctx, rtype, [("patient", patient_id)]) if ref in jsonio.canonical(d).decode()]
    provenances = [p for p in _find(store, ctx, "Provenance", [("patient", patient_id)])
                   if any(t.get("reference", "").startswith(ref + "/") for t in p.get("target") or [])]
    signature = sorted(provenances, key=lambda p: p.get("recorded", ""))[-1]["id"] if provenances else None
    return doc, items, signature


@dataclass
class Lists:
    """The patient's current problem and allergy lists (active, not entered in error)."""
    problems: list[dict[str, Any]]
    allergies: list[dict[str, Any]]

    def problem_with(self, icd10: str, skip: frozenset[str] = frozenset()) -> str | None:
        """The id of the active problem coded `icd10`, if the patient has one."""
        for doc in self.problems:
            codes = {c.get("code") for c in (doc.get("code") or {}).get("coding") or [] if c.get("system") == ICD10}
            if icd10 in codes and doc.get("id") not in skip:
                return str(doc["id"])
        return None

    def has_allergy(self, substance: str, skip: frozenset[str] = frozenset()) -> bool:
        """Whether an active allergy names this substance (case and accents ignored)."""
        wanted = fold_text(substance)
        return any(fold_text(str((doc.get("code") or {}).get("text") or "")) == wanted
                   for doc in self.allergies if doc.get("id") not in skip)


def lists(store: Store, ctx: AccessContext, patient_id: str) -> Lists:
    who = [("patient", patient_id)]
    problems = _find(store, ctx, "Condition", [*who, ("clinical-status", "active")])
    allergies = _find(store, ctx, "AllergyIntolerance", [*who, ("clinical-status", "active")])
    return Lists(corrections.hidden(problems), corrections.hidden(allergies))


@dataclass(frozen=True)
class Amendment:
    recorded: str
    who: str
    reason: str


def amendments(store: Store, ctx: AccessContext, patient_id: str, refs: set[str]) -> list[Amendment]:
    """Signed corrections (Provenances with a reason) of any of these `Type/id` resources, oldest first."""
    found = []
    for p in _find(store, ctx, "Provenance", [("patient", patient_id)]):
        targets = {"/".join(str(t.get("reference", "")).split("/")[:2]) for t in p.get("target") or []}
        if targets & refs and p.get("reason"):
            who = next((str((a.get("who") or {}).get("display") or "") for a in p.get("agent") or [] if (a.get("who") or {}).get("display")), "")
            found.append(Amendment(str(p.get("recorded", "")), who, str((p["reason"][0] or {}).get("text", ""))))
    return sorted(found, key=lambda a: a.recorded)
