"""One entry point for validating a resource: FHIR JSON rules, then the R4B model, then the length
limits of free text (`ehr.fhir.text_limits`)."""

from __future__ import annotations

from typing import Any

from ehr.fhir import resources, shape, text_limits
from ehr.fhir.outcomes import FhirError, Issue


def validate_resource(doc: dict[str, Any]) -> shape.WalkResult:
    """Raise a 400 FhirError listing every problem (422 for free text over its length limit);
    return the walk (references) when valid."""
    walked = shape.walk(doc)
    if walked.issues:
        raise FhirError(400, walked.issues)
    issues = resources.validate(doc)
    if issues:
        raise FhirError(400, issues)
    too_long = text_limits.check(doc)
    if too_long:  # valid FHIR, but over this server's limit: 422, naming the element (never the value)
        raise FhirError(422, [Issue("too-long", f"at most {t.limit:,} characters are allowed here; this has {t.actual:,}", expression=(t.expression,))
                              for t in too_long[:50]])
    return walked
