"""CapabilityStatement assembly (pure): what the caller says is served becomes the statement."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ehr.fhir.resources import FHIR_VERSION


@dataclass
class TypeCapability:
    interactions: list[str]
    search_params: list[tuple[str, str, str, str | None]] = field(default_factory=list)  # (name, type, doc, definition)
    conditional_create: bool = False
    operations: list[tuple[str, str]] = field(default_factory=list)  # (code, definition URL)
    conditional_update: bool = False
    conditional_delete: bool = False


def build(
    base_url: str,
    software_version: str,
    types: dict[str, TypeCapability],
    system_interactions: list[str],
    referential_integrity: bool,
    date: str,
    system_operations: list[tuple[str, str]] | None = None,
    token_url: str | None = None,
) -> dict[str, Any]:
    resources = []
    for name in sorted(types):
        cap = types[name]
        entry: dict[str, Any] = {
            "type": name,
            "interaction": [{"code": code} for code in cap.interactions],
            "versioning": "versioned",
            "readHistory": "history-instance" in cap.interactions,
            "updateCreate": "update" in cap.interactions,
            "conditionalCreate": cap.conditional_create,
            "conditionalRead": "full-support",
            "conditionalUpdate": cap.conditional_update,
            "conditionalDelete": "single" if cap.conditional_delete else "not-supported",
            "referencePolicy": ["literal", "local"] + (["enforced"] if referential_integrity else []),
        }
        if cap.operations:
            entry["operation"] = [{"name": code, "definition": url} for code, url in cap.operations]
        if cap.search_params:
            entry["searchParam"] = [
                {"name": n, **({"definition": url} if url else {}), "type": t, "documentation": d} for n, t, d, url in cap.search_params
            ]
        resources.append(entry)
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": date,
        "publisher": "ehr-vn",
        "kind": "instance",
        "software": {"name": "ehr-vn", "version": software_version},
        "implementation": {
            "description": "Encrypted FHIR R4 server for Vietnamese clinics (validated with the R4B models; see README)",
            "url": base_url,
        },
        "fhirVersion": FHIR_VERSION,
        "format": ["application/fhir+json", "json"],
        "patchFormat": ["application/json-patch+json"],
        "rest": [
            {
                "mode": "server",
                **({"security": _security(token_url)} if token_url else {}),
                "resource": resources,
                "interaction": [{"code": code} for code in system_interactions],
                **({"operation": [{"name": c, "definition": u} for c, u in system_operations]} if system_operations else {}),
            }
        ],
    }


def _security(token_url: str) -> dict[str, Any]:
    return {
        "cors": False,
        "service": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/restful-security-service", "code": "SMART-on-FHIR"}]}],
        "extension": [{
            "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
            "extension": [{"url": "token", "valueUri": token_url}],
        }],
        "description": (
            "SMART Backend Services: client credentials with a private_key_jwt assertion (RS384/ES384); bearer tokens of "
            "at most 300 s; SMART v2 system scopes enforced per interaction. Clients read what their organization wrote, "
            "and other data only with the patient's active Consent; another patient's resources answer 404."
        ),
    }
