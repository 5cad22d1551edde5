"""One entry point for validating a resource: FHIR JSON rules, then the R4B model."""

from __future__ import annotations

from typing import Any

from ehr.fhir import resources, shape
from ehr.fhir.outcomes import FhirError


def validate_resource(doc: dict[str, Any]) -> shape.WalkResult:
    """Raise a 400 FhirError listing every problem; return the walk (references) when valid."""
    walked = shape.walk(doc)
    if walked.issues:
        raise FhirError(400, walked.issues)
    issues = resources.validate(doc)
    if issues:
        raise FhirError(400, issues)
    return walked
