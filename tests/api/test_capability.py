"""/fhir/metadata tells the truth: every claimed interaction is routed, every route is claimed."""

from __future__ import annotations

from ehr.api.capability import CONDITIONAL_ROUTES, SYSTEM_ROUTES, TYPE_ROUTES, registered
from ehr.api.bulk import SYSTEM_OPERATIONS, TYPE_OPERATIONS
from ehr.api.operations import OPERATIONS
from ehr.fhir.resources import SERVED_TYPES
from fhir_helpers import body, created_id, patient, post


def test_statement_basics(client):
    doc = body(client.get("/fhir/metadata"))
    assert doc["resourceType"] == "CapabilityStatement" and doc["fhirVersion"] == "4.0.1"
    served = {r["type"] for r in doc["rest"][0]["resource"]}
    assert served == SERVED_TYPES and "Patient" in served and "OperationOutcome" not in served
    security = doc["rest"][0]["security"]
    assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    assert security["extension"][0]["extension"][0]["valueUri"].endswith("/auth/token")


def test_every_fhir_route_is_claimed(app, client):
    fhir_routes = {(rule, m) for rule, m in registered(app) if rule.startswith("/fhir") and m not in ("HEAD", "OPTIONS")}
    known = set(TYPE_ROUTES) | set(SYSTEM_ROUTES) | set(CONDITIONAL_ROUTES) | set(OPERATIONS) | set(SYSTEM_OPERATIONS) | set(TYPE_OPERATIONS) | {
        ("/fhir/$export-status/<job_id>", "GET"), ("/fhir/$export-status/<job_id>", "DELETE"), ("/fhir/$export-file/<job_id>/<name>", "GET"),("/fhir/metadata", "GET"), ("/fhir/<rtype>/_search", "POST"),
        ("/fhir/.well-known/smart-configuration", "GET"), ("/fhir/AuditEvent", "GET"), ("/fhir/AuditEvent/<rid>", "GET"),
        ("/fhir/openapi.json", "GET")}
    assert fhir_routes <= known, fhir_routes - known
    doc = body(client.get("/fhir/metadata"))
    claimed = {i["code"] for r in doc["rest"][0]["resource"] for i in r["interaction"]}
    routed = {code for key, code in TYPE_ROUTES.items() if key in fhir_routes}
    assert claimed == routed


def test_claimed_interactions_answer(client):
    doc = body(client.get("/fhir/metadata"))
    patient_cap = next(r for r in doc["rest"][0]["resource"] if r["type"] == "Patient")
    rid = created_id(post(client, patient()))
    calls = {
        "read": lambda: client.get(f"/fhir/Patient/{rid}"),
        "vread": lambda: client.get(f"/fhir/Patient/{rid}/_history/1"),
        "update": lambda: client.put(f"/fhir/Patient/{rid}", json=patient(id=rid), headers={"Content-Type": "application/fhir+json"}),
        "patch": lambda: client.patch(f"/fhir/Patient/{rid}", json=[{"op": "add", "path": "/active", "value": True}], headers={"Content-Type": "application/json-patch+json"}),
        "history-instance": lambda: client.get(f"/fhir/Patient/{rid}/_history"),
        "history-type": lambda: client.get("/fhir/Patient/_history"),
        "create": lambda: post(client, patient()),
        "search-type": lambda: client.get("/fhir/Patient"),
        "delete": lambda: client.delete(f"/fhir/Patient/{rid}"),
    }
    for interaction in patient_cap["interaction"]:
        assert calls[interaction["code"]]().status_code < 300, interaction
    assert {p["name"] for p in patient_cap["searchParam"]} >= {"_id", "_lastUpdated", "identifier", "name", "birthdate"}
    audit_cap = next(r for r in doc["rest"][0]["resource"] if r["type"] == "AuditEvent")
    assert not {"create", "update", "patch", "delete"} & {i["code"] for i in audit_cap["interaction"]}


SAMPLE = {"token": "x", "string": "x", "date": "ge2020", "reference": "x", "quantity": "5", "number": "5"}


def test_every_claimed_search_parameter_answers(client):
    doc = body(client.get("/fhir/metadata"))
    checked = 0
    for resource in doc["rest"][0]["resource"]:
        for param in resource.get("searchParam", []):
            response = client.get(f"/fhir/{resource['type']}", query_string={param["name"]: SAMPLE[param["type"]]},
                                  headers={"Prefer": "handling=strict"})
            assert response.status_code == 200, (resource["type"], param["name"], response.data[:200])
            checked += 1
    assert checked > 119
