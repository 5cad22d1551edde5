"""The one place that imports fhir.resources.

FHIR release: hospitals speak R4 (4.0.1). fhir.resources 8 ships R5 (its default import), R4B and
STU3, not R4. R4B is wire-compatible with R4 for the resources this service exchanges, so payloads
are validated with the R4B models (`fhir.resources.R4B`), never with the R5 default, which renames
elements and would reject or silently drop R4 data. The server announces fhirVersion 4.0.1 and
serves the R4 resource types that R4B also defines (`SERVED_TYPES`). The major version of
fhir.resources is pinned in setup.cfg.
"""

from __future__ import annotations

import re
import types
import typing
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from ehr.fhir.outcomes import Issue

FHIR_VERSION = "4.0.1"

# Every resource type of FHIR R4 4.0.1 (http://hl7.org/fhir/R4/resourcelist.html).
R4_RESOURCE_TYPES: tuple[str, ...] = tuple(
    """Account ActivityDefinition AdverseEvent AllergyIntolerance Appointment AppointmentResponse
    AuditEvent Basic Binary BiologicallyDerivedProduct BodyStructure Bundle CapabilityStatement CarePlan
    CareTeam CatalogEntry ChargeItem ChargeItemDefinition Claim ClaimResponse ClinicalImpression
    CodeSystem Communication CommunicationRequest CompartmentDefinition Composition ConceptMap Condition
    Consent Contract Coverage CoverageEligibilityRequest CoverageEligibilityResponse DetectedIssue Device
    DeviceDefinition DeviceMetric DeviceRequest DeviceUseStatement DiagnosticReport DocumentManifest
    DocumentReference EffectEvidenceSynthesis Encounter Endpoint EnrollmentRequest EnrollmentResponse
    EpisodeOfCare EventDefinition Evidence EvidenceVariable ExampleScenario ExplanationOfBenefit
    FamilyMemberHistory Flag Goal GraphDefinition Group GuidanceResponse HealthcareService ImagingStudy
    Immunization ImmunizationEvaluation ImmunizationRecommendation ImplementationGuide InsurancePlan
    Invoice Library Linkage List Location Measure MeasureReport Media Medication
    MedicationAdministration MedicationDispense MedicationKnowledge MedicationRequest MedicationStatement
    MedicinalProduct MedicinalProductAuthorization MedicinalProductContraindication
    MedicinalProductIndication MedicinalProductIngredient MedicinalProductInteraction
    MedicinalProductManufactured MedicinalProductPackaged MedicinalProductPharmaceutical
    MedicinalProductUndesirableEffect MessageDefinition MessageHeader MolecularSequence NamingSystem
    NutritionOrder Observation ObservationDefinition OperationDefinition OperationOutcome Organization
    OrganizationAffiliation Parameters Patient PaymentNotice PaymentReconciliation Person PlanDefinition
    Practitioner PractitionerRole Procedure Provenance Questionnaire QuestionnaireResponse RelatedPerson
    RequestGroup ResearchDefinition ResearchElementDefinition ResearchStudy ResearchSubject RiskAssessment
    RiskEvidenceSynthesis Schedule SearchParameter ServiceRequest Slot Specimen SpecimenDefinition
    StructureDefinition StructureMap Subscription Substance SubstanceNucleicAcid SubstancePolymer
    SubstanceProtein SubstanceReferenceInformation SubstanceSourceMaterial SubstanceSpecification
    SupplyDelivery SupplyRequest Task TerminologyCapabilities TestReport TestScript ValueSet
    VerificationResult VisionPrescription""".split()
)

# Message-only types: they describe an exchange and are never stored (FHIR R4 operationoutcome.html,
# parameters.html).
NOT_STORED = frozenset({"OperationOutcome", "Parameters"})


def _defined_in_r4b(name: str) -> bool:
    try:
        get_fhir_model_class(name)
    except (KeyError, ValueError, ImportError, AttributeError):
        return False
    return True


R4B_TYPES: frozenset[str] = frozenset(t for t in R4_RESOURCE_TYPES if _defined_in_r4b(t))
SERVED_TYPES: frozenset[str] = R4B_TYPES - NOT_STORED
ID_PATTERN = re.compile(r"\A[A-Za-z0-9\-.]{1,64}\Z")


def is_valid_id(value: object) -> bool:
    # "." and ".." match the R4 pattern, but clients and proxies resolve them as path segments
    return isinstance(value, str) and ID_PATTERN.match(value) is not None and value.strip(".") != ""


# --- element tables for the JSON shape checker --------------------------------------------------

KIND_BOOL, KIND_INT, KIND_DECIMAL, KIND_STR, KIND_OBJECT, KIND_RESOURCE, KIND_EXT, KIND_BASE64 = range(8)


@dataclass(frozen=True, slots=True)
class Element:
    kind: int
    is_list: bool
    child: str | None  # model class key for KIND_OBJECT ("R4B.HumanName" style dotted path)
    codes: frozenset[str] | None = None  # a code with a required binding: the only values allowed


# The model generator cut these required value sets short (its list ends in "+"); the rest of the
# codes are from the R4 value sets (hl7.org/fhir/R4/valueset-*.html).
_OBSERVATION_STATUS = ("registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error", "unknown")
_ENCOUNTER_STATUS = ("planned", "arrived", "triaged", "in-progress", "onleave", "finished", "cancelled", "entered-in-error", "unknown")
_FULL_CODES: dict[str, tuple[str, ...]] = {
    "Observation.status": _OBSERVATION_STATUS,
    "DetectedIssue.status": _OBSERVATION_STATUS,
    "RiskAssessment.status": _OBSERVATION_STATUS,
    "DiagnosticReport.status": ("registered", "partial", "preliminary", "final", "amended", "corrected", "appended", "cancelled",
                                "entered-in-error", "unknown"),
    "Encounter.status": _ENCOUNTER_STATUS,
    "EncounterStatusHistory.status": _ENCOUNTER_STATUS,
    "Task.status": ("draft", "requested", "received", "accepted", "rejected", "ready", "cancelled", "in-progress", "on-hold", "failed",
                    "completed", "entered-in-error"),
    "DeviceUseStatement.status": ("active", "completed", "entered-in-error", "intended", "stopped", "on-hold"),
    "SupplyRequest.status": ("draft", "active", "suspended", "cancelled", "completed", "entered-in-error", "unknown"),
    "DeviceUdiCarrier.entryType": ("barcode", "rfid", "manual", "card", "self-reported", "unknown"),
}

# Lists that are not the value set: CapabilityStatement.format is bound to the mime types (plus
# xml | json | ttl); the generator wrote a placeholder word into its list.
_NOT_CODE_LISTS = frozenset({"CapabilityStatement.format"})


def _codes_of(cls: Any, name: str, info: Any) -> frozenset[str] | None:
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    listed = extra.get("enum_values")
    if not listed:
        return None
    if f"{cls.__name__}.{info.alias or name}" in _NOT_CODE_LISTS or "etc." in listed:
        return None
    if "+" in listed:
        full = _FULL_CODES.get(f"{cls.__name__}.{info.alias or name}")
        return frozenset(full) if full else None  # unknown rest of the list: do not guess
    return frozenset(listed)


_INT_META = {"Integer", "PositiveInt", "UnsignedInt"}


def _strip_optional(ann: Any) -> Any:
    if typing.get_origin(ann) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(ann) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return ann


def _element_of(ann: Any) -> Element | None:
    ann = _strip_optional(ann)
    is_list = False
    if typing.get_origin(ann) is list:
        is_list = True
        ann = _strip_optional(typing.get_args(ann)[0])
    if typing.get_origin(ann) is typing.Annotated:
        base, *meta = typing.get_args(ann)
        meta_names = {type(m).__name__ for m in meta}
        if base is bool:
            return Element(KIND_BOOL, is_list, None)
        if meta_names & _INT_META or base is int:
            return Element(KIND_INT, is_list, None)
        if meta_names & {"Decimal"}:
            return Element(KIND_DECIMAL, is_list, None)
        if meta_names & {"Base64Binary"}:
            return Element(KIND_BASE64, is_list, None)
        return Element(KIND_STR, is_list, None)
    if ann is bool:
        return Element(KIND_BOOL, is_list, None)
    if ann is int:
        return Element(KIND_INT, is_list, None)
    if ann is str:
        return Element(KIND_STR, is_list, None)
    klass = getattr(ann, "_model_klass", None)
    if isinstance(klass, str):
        short = klass.rsplit(".", 1)[-1]
        if short == "Resource":
            return Element(KIND_RESOURCE, is_list, None)
        if short == "FHIRPrimitiveExtension":
            return Element(KIND_EXT, is_list, None)
        return Element(KIND_OBJECT, is_list, klass)
    return None


@lru_cache(maxsize=None)
def element_table(model_key: str) -> dict[str, Element]:
    """JSON property name -> Element for a resource type name or a dotted model class path."""
    if "." in model_key:
        module_name, cls_name = model_key.rsplit(".", 1)
        module = __import__(module_name, fromlist=[cls_name])
        cls = getattr(module, cls_name)
    else:
        cls = get_fhir_model_class(model_key)
    table: dict[str, Element] = {}
    for name, info in cls.model_fields.items():
        if name == "fhir_comments":
            continue  # a DSTU2 leftover, not part of R4 JSON
        element = _element_of(info.annotation)
        if element is not None:
            codes = _codes_of(cls, name, info) if element.kind == KIND_STR else None
            table[info.alias or name] = replace(element, codes=codes) if codes else element
    return table


def summary_and_required(resource_type: str) -> tuple[list[str], list[str]]:
    """Top-level JSON names marked as summary elements, and those the model requires."""
    cls = get_fhir_model_class(resource_type)
    summary, required = [], []
    for name, info in cls.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        alias = info.alias or name
        if extra.get("summary_element_property"):
            summary.append(alias)
        if info.is_required() or extra.get("element_required") or extra.get("one_of_many_required"):
            required.append(alias)
    return summary, required


def reference_model_key() -> str:
    return "fhir.resources.R4B.reference.Reference"


def narrative_model_key() -> str:
    return "fhir.resources.R4B.narrative.Narrative"


# --- validation -----------------------------------------------------------------------------


def _expression(resource_type: str, loc: tuple[Any, ...]) -> str:
    out = resource_type
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and not part.startswith(("function-", "is-instance")):
            out += f".{part}"
    return out


def _safe_message(msg: str) -> str:
    # pydantic and fhir_core messages describe the rule; a few quote the input. Keep the first
    # clause and drop anything in quotes longer than a code, so no submitted value is echoed.
    msg = msg.split("\n", 1)[0]
    msg = re.sub(r"'[^']{40,}'", "'…'", msg)
    msg = re.sub(r"input_value=.*", "", msg)
    return msg.strip() or "invalid value"


def validate(doc: dict[str, Any]) -> list[Issue]:
    """Validate a resource dict with the R4B model; return value-free issues (empty when valid)."""
    resource_type = doc["resourceType"]
    try:
        get_fhir_model_class(resource_type).model_validate(doc)
    except ValidationError as exc:
        issues = []
        for err in exc.errors(include_url=False, include_input=False, include_context=False):
            loc = tuple(p for p in err.get("loc", ()) if p != "__root__")
            code = "structure" if err.get("type") == "extra_forbidden" else "value"
            if err.get("type") == "missing":
                code = "required"
            message = "unknown element" if err.get("type") == "extra_forbidden" else _safe_message(err.get("msg", ""))
            issues.append(Issue(code, message, expression=(_expression(resource_type, loc),)))
        return issues
    except (ValueError, TypeError) as exc:  # validators outside pydantic's error wrapping
        return [Issue("value", f"invalid resource ({type(exc).__name__})", expression=(resource_type,))]
    return []
