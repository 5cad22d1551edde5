"""Every official HL7 R4 example of a storable type round-trips: create, read, compare."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from ehr.fhir import references, shape
from fhir_helpers import body, created_id, post, put

EXAMPLES = Path(__file__).resolve().parent.parent / "data" / "fhir-r4" / "examples"
NOT_STORED_BUNDLES = {"searchset", "batch", "transaction", "batch-response", "transaction-response"}
SUBJECT = {"reference": "Patient/stub-subject"}

# Minimal valid resources for targets that examples reference but the set does not contain.
STUBS = {
    "Patient": {},
    "Practitioner": {},
    "Organization": {},
    "Location": {},
    "Medication": {},
    "Device": {},
    "Encounter": {"status": "finished", "class": {"code": "AMB"}},
    "Observation": {"status": "final", "code": {"text": "stub"}},
    "DiagnosticReport": {"status": "final", "code": {"text": "stub"}},
    "Endpoint": {"status": "active", "connectionType": {"code": "hl7-fhir-rest"}, "payloadType": [{"text": "any"}], "address": "https://example.org/fhir"},
    "Procedure": {"status": "completed", "subject": SUBJECT},
    "Coverage": {"status": "active", "beneficiary": SUBJECT, "payor": [SUBJECT]},
    "Media": {"status": "completed", "content": {"contentType": "text/plain"}},
    "ServiceRequest": {"status": "active", "intent": "order", "subject": SUBJECT},
    "DetectedIssue": {"status": "final"},
    "Condition": {"subject": SUBJECT},
    "DeviceMetric": {"type": {"text": "stub"}, "category": "measurement"},
    "CarePlan": {"status": "active", "intent": "plan", "subject": SUBJECT},
}


def storable_examples() -> list[str]:
    index = json.loads((EXAMPLES / "INDEX.json").read_text())
    return [
        e["file"] for e in index
        if e["resourceType"] != "OperationOutcome" and (e["bundle_type"] or "collection") not in NOT_STORED_BUNDLES
    ]


def load(name: str) -> dict:
    return json.loads((EXAMPLES / name).read_text(), parse_float=Decimal)


def ensure_targets(client, doc: dict) -> None:
    if doc["resourceType"] == "Bundle":
        return
    put(client, {"resourceType": "Patient", "id": "stub-subject"})
    for _, ref in shape.walk(doc).references:
        parsed = references.parse(ref.get("reference") or "")
        if parsed.kind == "local" and client.get(f"/fhir/{parsed.resource_type}/{parsed.logical_id}").status_code != 200:
            stub = {"resourceType": parsed.resource_type, "id": parsed.logical_id, **STUBS[parsed.resource_type]}
            assert put(client, stub).status_code in (200, 201), parsed


def strip(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k not in ("id", "meta")}


def test_the_example_set_is_complete():
    assert len(storable_examples()) == 68  # 78 files - 3 OperationOutcomes - 7 message bundles


@pytest.mark.parametrize("name", storable_examples())
def test_example_round_trips(client, name):
    sent = load(name)
    ensure_targets(client, sent)
    rid = created_id(post(client, sent))
    stored = body(client.get(f"/fhir/{sent['resourceType']}/{rid}"))
    assert strip(stored) == strip(sent)
    assert stored["id"] == rid and stored["meta"]["versionId"] == "1"
    if "meta" in sent:
        extra = {k: v for k, v in sent["meta"].items() if k not in ("versionId", "lastUpdated")}
        assert {k: stored["meta"][k] for k in extra} == extra
