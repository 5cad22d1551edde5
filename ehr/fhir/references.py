"""Reference strings, and the patient compartment a resource belongs to.

A resource is encrypted under the data key of exactly one patient compartment: the patient named
by the first Patient reference found along the paths below, in order (subject before performer, so
an Observation about patient A performed by patient B belongs to A). Paths follow the R4 patient
CompartmentDefinition (compartmentdefinition-patient.html). Group, Schedule and resources without a
patient reference use the shared data key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable

from ehr.fhir.resources import R4_RESOURCE_TYPES, is_valid_id

_R4 = frozenset(R4_RESOURCE_TYPES)
_RELATIVE = re.compile(r"\A([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/([A-Za-z0-9\-.]{1,64}))?\Z")
_INDEX = re.compile(r"\[\d+\]")


@dataclass(frozen=True, slots=True)
class Ref:
    kind: str  # "local" (Type/id on this server), "contained", "urn", "conditional", "external", "invalid"
    resource_type: str | None = None
    logical_id: str | None = None
    version: str | None = None


def parse(reference: str, base_urls: Iterable[str] = ()) -> Ref:
    """Classify a Reference.reference string."""
    if reference.startswith("#"):
        return Ref("contained", logical_id=reference[1:])
    if reference.startswith(("urn:uuid:", "urn:oid:")):
        return Ref("urn")
    for base in base_urls:
        if base and reference.startswith(base.rstrip("/") + "/"):
            reference = reference[len(base.rstrip("/")) + 1 :]
            break
    if "?" in reference and "/" not in reference.split("?", 1)[0]:
        return Ref("conditional", resource_type=reference.split("?", 1)[0])
    match = _RELATIVE.match(reference)
    if match:
        rtype, rid, version = match.groups()
        if rtype not in _R4:
            return Ref("invalid", resource_type=rtype)
        return Ref("local", rtype, rid, version)
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", reference):
        return Ref("external")
    return Ref("invalid")


PATIENT_PATHS: dict[str, tuple[str, ...]] = {
    "Account": ("subject",),
    "AdverseEvent": ("subject",),
    "AllergyIntolerance": ("patient", "recorder", "asserter"),
    "Appointment": ("participant.actor",),
    "AppointmentResponse": ("actor",),
    "AuditEvent": ("entity.what", "agent.who"),
    "Basic": ("subject", "author"),
    "BodyStructure": ("patient",),
    "CarePlan": ("subject", "activity.detail.performer"),
    "CareTeam": ("subject", "participant.member"),
    "ChargeItem": ("subject",),
    "Claim": ("patient", "payee.party"),
    "ClaimResponse": ("patient",),
    "ClinicalImpression": ("subject",),
    "Communication": ("subject", "sender", "recipient"),
    "CommunicationRequest": ("subject", "sender", "recipient", "requester"),
    "Composition": ("subject", "author", "attester.party"),
    "Condition": ("subject", "asserter"),
    "Consent": ("patient",),
    "Coverage": ("beneficiary", "subscriber", "policyHolder", "payor"),
    "CoverageEligibilityRequest": ("patient",),
    "CoverageEligibilityResponse": ("patient",),
    "DetectedIssue": ("patient",),
    "Device": ("patient",),
    "DeviceRequest": ("subject", "performer"),
    "DeviceUseStatement": ("subject",),
    "DiagnosticReport": ("subject",),
    "DocumentManifest": ("subject", "author", "recipient"),
    "DocumentReference": ("subject", "author"),
    "Encounter": ("subject",),
    "EnrollmentRequest": ("candidate",),
    "EpisodeOfCare": ("patient",),
    "ExplanationOfBenefit": ("patient", "payee.party"),
    "FamilyMemberHistory": ("patient",),
    "Flag": ("subject",),
    "Goal": ("subject",),
    "GuidanceResponse": ("subject",),
    "ImagingStudy": ("subject",),
    "Immunization": ("patient",),
    "ImmunizationEvaluation": ("patient",),
    "ImmunizationRecommendation": ("patient",),
    "Invoice": ("subject", "recipient"),
    "List": ("subject", "source"),
    "MeasureReport": ("subject",),
    "Media": ("subject",),
    "MedicationAdministration": ("subject", "performer.actor"),
    "MedicationDispense": ("subject", "receiver"),
    "MedicationRequest": ("subject",),
    "MedicationStatement": ("subject",),
    "MolecularSequence": ("patient",),
    "NutritionOrder": ("patient",),
    "Observation": ("subject", "performer"),
    "Person": ("link.target",),
    "Procedure": ("subject", "performer.actor"),
    "Provenance": ("target",),
    "QuestionnaireResponse": ("subject", "author"),
    "RelatedPerson": ("patient",),
    "RequestGroup": ("subject", "action.participant"),
    "ResearchSubject": ("individual",),
    "RiskAssessment": ("subject",),
    "ServiceRequest": ("subject", "performer"),
    "Specimen": ("subject",),
    "SupplyDelivery": ("patient",),
    "SupplyRequest": ("requester",),
    "Task": ("for",),
    "VisionPrescription": ("patient",),
}


def strip_indexes(path: str) -> str:
    return _INDEX.sub("", path)


def patient_compartment(
    resource_type: str, logical_id: str, references: list[tuple[str, dict[str, Any]]], base_urls: Iterable[str] = ()
) -> str | None:
    """The patient id whose compartment holds this resource, or None for the shared compartment."""
    if resource_type == "Patient":
        return logical_id
    paths = PATIENT_PATHS.get(resource_type)
    if not paths:
        return None
    base_urls = tuple(base_urls)
    by_path: dict[str, list[str]] = {}
    for path, ref in references:
        value = ref.get("reference")
        if isinstance(value, str):
            # path is "Type.element[...]..."; compartment paths are relative to the resource root
            by_path.setdefault(strip_indexes(path).split(".", 1)[-1], []).append(value)
    for wanted in paths:
        for value in by_path.get(wanted, ()):
            parsed = parse(value, base_urls)
            if parsed.kind == "local" and parsed.resource_type == "Patient" and is_valid_id(parsed.logical_id):
                return parsed.logical_id
    return None


def rewrite(node: Any, mapping: dict[str, str]) -> int:
    """Replace every Reference.reference found in `mapping` (fullUrl -> Type/id), at any depth,
    including extensions and contained resources. Returns the number of references rewritten."""
    count = 0
    if isinstance(node, dict):
        value = node.get("reference")
        if isinstance(value, str) and value in mapping:
            node["reference"] = mapping[value]
            count += 1
        for child in node.values():
            if isinstance(child, (dict, list)):
                count += rewrite(child, mapping)
    elif isinstance(node, list):
        for child in node:
            if isinstance(child, (dict, list)):
                count += rewrite(child, mapping)
    return count


def retarget(node: Any, resource_type: str, old_id: str, new_id: str, base_urls: Iterable[str] = ()) -> int:
    """Point every reference to resource_type/old_id (relative, absolute on this server, or
    versioned) at resource_type/new_id, at any depth. Returns how many were changed."""
    count = 0
    base_urls = tuple(base_urls)
    if isinstance(node, dict):
        value = node.get("reference")
        if isinstance(value, str):
            parsed = parse(value, base_urls)
            if parsed.kind == "local" and parsed.resource_type == resource_type and parsed.logical_id == old_id:
                node["reference"] = f"{resource_type}/{new_id}"
                count += 1
        for child in node.values():
            if isinstance(child, (dict, list)):
                count += retarget(child, resource_type, old_id, new_id, base_urls)
    elif isinstance(node, list):
        for child in node:
            if isinstance(child, (dict, list)):
                count += retarget(child, resource_type, old_id, new_id, base_urls)
    return count
