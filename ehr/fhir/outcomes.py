"""Errors as FHIR OperationOutcomes.

Every failure the API reports is a `FhirError` carrying the HTTP status and one or more issues.
Messages name the failing element (`expression`) and never echo the submitted value: values can be
national ID numbers or names, and error bodies end up in client logs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Issue:
    code: str
    diagnostics: str
    severity: str = "error"
    expression: tuple[str, ...] = ()

    def to_fhir(self) -> dict[str, Any]:
        out: dict[str, Any] = {"severity": self.severity, "code": self.code, "diagnostics": self.diagnostics}
        if self.expression:
            out["expression"] = list(self.expression)
        return out


@dataclass
class FhirError(Exception):
    """An error with an HTTP status; the edge turns it into an OperationOutcome response."""

    status: int
    issues: list[Issue] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:  # used by logs: codes only, diagnostics are value-free by contract
        return f"{self.status} " + ",".join(i.code for i in self.issues)

    @classmethod
    def one(
        cls, status: int, code: str, diagnostics: str, expression: str | None = None, **headers: str
    ) -> FhirError:
        return cls(status, [Issue(code, diagnostics, expression=(expression,) if expression else ())], headers)


def bad_request(diagnostics: str, expression: str | None = None, code: str = "invalid") -> FhirError:
    return FhirError.one(400, code, diagnostics, expression)


def not_found(diagnostics: str) -> FhirError:
    return FhirError.one(404, "not-found", diagnostics)


def gone(diagnostics: str) -> FhirError:
    return FhirError.one(410, "deleted", diagnostics)


def conflict(diagnostics: str, expression: str | None = None) -> FhirError:
    return FhirError.one(409, "conflict", diagnostics, expression)


def precondition_failed(diagnostics: str) -> FhirError:
    return FhirError.one(412, "conflict", diagnostics)


def unprocessable(diagnostics: str, expression: str | None = None, code: str = "business-rule") -> FhirError:
    return FhirError.one(422, code, diagnostics, expression)


def not_supported(status: int, diagnostics: str) -> FhirError:
    return FhirError.one(status, "not-supported", diagnostics)


def operation_outcome(issues: list[Issue]) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [i.to_fhir() for i in issues]}


def information(diagnostics: str) -> dict[str, Any]:
    return operation_outcome([Issue("informational", diagnostics, severity="information")])
