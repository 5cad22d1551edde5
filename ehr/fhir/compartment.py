"""Which patient a resource is about: the patient compartment, from the R4 CompartmentDefinition.

A resource is encrypted under one patient's data key and is visible to whoever may see that
patient's record. Getting this wrong leaks: a resource put in no compartment used to be readable
by every facility. So the rules are, in order:

1. the paths of the R4 Patient CompartmentDefinition (`fhir/patient-compartment.json`, derived
   from `compartmentdefinition-patient.json` and the expressions of its SearchParameters by
   `python -m ehr.fhir.compartment`), primary paths first (subject, patient, beneficiary, for...),
   as literal `Patient/<id>` references, then as identifier references (a CCCD) resolved to the
   patient who holds the number;
2. otherwise every reference anywhere in the resource (contained resources and Bundle entries
   included): literal Patient references, identifier references, contained Patients and Bundle
   entry Patients carrying a CCCD, and references to other resources here, which lend their own
   compartment (a Provenance on an Observation, a Binary's securityContext, an Observation's
   focus). When these name exactly one patient, the resource is in that patient's compartment.

A resource that names no patient (or several) is in no compartment. Only the directory and
conformance types of `SHARED_TYPES` are then shared with everyone; anything else is private to
the organization that wrote it (a Group of several patients, a Contract, a Bundle). This module
only collects candidates; `ehr.services.compartments` resolves them against the store.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from ehr.fhir import references as refs
from ehr.fhir.resources import is_valid_id

DECLARATION = Path(__file__).resolve().parents[2] / "fhir" / "patient-compartment.json"

# Directory data every facility may read (and only its owner may change).
DIRECTORY_TYPES = frozenset({
    "Organization", "Location", "Practitioner", "PractitionerRole", "HealthcareService", "Endpoint", "Medication",
    "Substance", "OrganizationAffiliation", "Device", "MedicationKnowledge",
})
# Conformance and terminology artifacts: readable by all, written by operators only.
CONFORMANCE_TYPES = frozenset({
    "CapabilityStatement", "StructureDefinition", "ImplementationGuide", "SearchParameter", "OperationDefinition",
    "CompartmentDefinition", "StructureMap", "GraphDefinition", "MessageDefinition", "ExampleScenario", "NamingSystem",
    "CodeSystem", "ValueSet", "ConceptMap", "TerminologyCapabilities", "Questionnaire", "PlanDefinition",
    "ActivityDefinition", "Library", "Measure", "EventDefinition", "ObservationDefinition", "SpecimenDefinition",
    "ChargeItemDefinition",
})
SHARED_TYPES = DIRECTORY_TYPES | CONFORMANCE_TYPES

# Elements that name the person the resource is about; these come before author-like paths.
_PRIMARY = ("subject", "patient", "beneficiary", "for", "individual", "candidate", "member.entity", "link.target")
# How many references to other resources are looked up to lend their compartment (bounds the cost).
MAX_LINKS = 64


def _load() -> dict[str, tuple[str, ...]]:
    if not DECLARATION.exists():
        return {}  # only while `main` writes it for the first time
    data = json.loads(DECLARATION.read_text(encoding="utf-8"))
    return {rtype: tuple(paths) for rtype, paths in data["paths"].items()}


PATIENT_PATHS: dict[str, tuple[str, ...]] = _load()


def derive(definition: dict[str, Any], search_parameters: dict[str, Any]) -> dict[str, list[str]]:
    """Element paths per type from the CompartmentDefinition's params and their expressions."""
    expressions: dict[tuple[str, str], str] = {}
    for entry in search_parameters.get("entry") or ():
        sp = entry.get("resource") or {}
        for base in sp.get("base") or ():
            if sp.get("expression"):
                expressions[(base, sp["code"])] = sp["expression"]
    out: dict[str, list[str]] = {}
    for item in definition.get("resource") or ():
        rtype = item["code"]
        if rtype == "Patient" or not item.get("param"):
            continue  # a Patient is its own compartment
        paths: list[str] = []
        for param in item["param"]:
            for part in expressions.get((rtype, param), "").split("|"):
                part = part.strip()
                if not part.startswith(f"{rtype}."):
                    continue
                path = part[len(rtype) + 1 :].replace(".where(resolve() is Patient)", "")
                if path not in paths:
                    paths.append(path)
        rank = {p: (0 if p in _PRIMARY else 1, i) for i, p in enumerate(paths)}
        out[rtype] = sorted(paths, key=rank.__getitem__)
    return dict(sorted(out.items()))


@dataclass
class Candidates:
    """What a resource says about its patient, before anything is looked up."""

    by_definition: list[str] = field(default_factory=list)  # distinct literal Patient ids at the first compartment path naming any
    identifiers_by_definition: list[dict[str, Any]] = field(default_factory=list)  # identifier refs there
    patients: set[str] = field(default_factory=set)  # literal Patient ids anywhere
    identifiers: list[dict[str, Any]] = field(default_factory=list)  # identifiers of patients named anywhere
    links: list[tuple[str, str]] = field(default_factory=list)  # other local resources referenced
    by_definition_done: bool = False


def _relative(path: str) -> str:
    """`Observation.subject` -> `subject`; contained and entry paths keep their prefix."""
    return refs.strip_indexes(path).split(".", 1)[-1]


def collect(resource_type: str, doc: dict[str, Any], references: list[tuple[str, dict[str, Any]]], base_urls: Iterable[str] = ()) -> Candidates:
    base_urls = tuple(base_urls)
    c = Candidates()
    wanted = PATIENT_PATHS.get(resource_type, ())
    at_paths: dict[str, list[dict[str, Any]]] = {}
    for path, ref in references:
        rel = _relative(path)
        at_paths.setdefault(rel, []).append(ref)
        value = ref.get("reference")
        if isinstance(value, str):
            parsed = refs.parse(value, base_urls)
            if parsed.kind == "local" and parsed.resource_type and is_valid_id(parsed.logical_id):
                if parsed.resource_type == "Patient":
                    c.patients.add(str(parsed.logical_id))
                elif len(c.links) < MAX_LINKS:
                    c.links.append((parsed.resource_type, str(parsed.logical_id)))
        ident = ref.get("identifier")
        if isinstance(ident, dict) and (ref.get("type") in (None, "Patient")):
            c.identifiers.append(ident)
    for wanted_path in wanted:
        for ref in at_paths.get(wanted_path, ()):
            value = ref.get("reference")
            if isinstance(value, str) and not c.by_definition_done:
                parsed = refs.parse(value, base_urls)
                if parsed.kind == "local" and parsed.resource_type == "Patient" and is_valid_id(parsed.logical_id):
                    if parsed.logical_id not in c.by_definition:
                        c.by_definition.append(str(parsed.logical_id))
            ident = ref.get("identifier")
            if isinstance(ident, dict) and ref.get("type") in (None, "Patient"):
                c.identifiers_by_definition.append(ident)
        # The first path that names a patient decides (subject before performer); several
        # patients there (a Group's members) put the resource in no single compartment.
        c.by_definition_done = c.by_definition_done or bool(c.by_definition)
    for nested in _nested_patients(doc):
        for ident in nested.get("identifier") or ():
            if isinstance(ident, dict):
                c.identifiers.append(ident)
    return c


def _nested_patients(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Patients carried inside the resource: contained ones and Bundle entries (any depth)."""
    out: list[dict[str, Any]] = []
    stack: list[Any] = [*(doc.get("contained") or ())]
    for entry in doc.get("entry") or () if doc.get("resourceType") == "Bundle" else ():
        if isinstance(entry, dict):
            stack.append(entry.get("resource"))
    while stack:
        item = stack.pop()
        if not isinstance(item, dict):
            continue
        if item.get("resourceType") == "Patient":
            out.append(item)
        stack.extend(item.get("contained") or ())
        if item.get("resourceType") == "Bundle":
            stack.extend(e.get("resource") for e in item.get("entry") or () if isinstance(e, dict))
    return out


def main(argv: list[str]) -> None:
    """`python -m ehr.fhir.compartment DEFINITION.json SEARCH-PARAMETERS.json` prints the table."""
    definition = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    params = json.loads(Path(argv[2]).read_text(encoding="utf-8"))
    table = {"source": "R4 compartmentdefinition-patient.json + search-parameters.json (python -m ehr.fhir.compartment)",
             "paths": derive(definition, params)}
    sys.stdout.write(json.dumps(table, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main(sys.argv)
