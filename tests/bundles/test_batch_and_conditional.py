"""Batch bundles (independent entries) and type-level conditional update and delete."""

from __future__ import annotations

import json

from fhir_helpers import FHIR_JSON, body, created_id, post
from search_helpers import ids


def test_batch_mixed_successes_and_failures(client):
    pid = created_id(post(client, {"resourceType": "Patient"}))
    entries = [
        {"fullUrl": "urn:uuid:00000000-0000-4000-8000-0000000000aa", "resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Observation", "status": "final"}, "request": {"method": "POST", "url": "Observation"}},
        {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": {"reference": "urn:uuid:00000000-0000-4000-8000-0000000000aa"}},
         "request": {"method": "POST", "url": "Observation"}},  # batch does not rewrite: 422
        {"request": {"method": "GET", "url": f"Patient/{pid}"}},
        {"request": {"method": "GET", "url": "Patient/nobody"}},
        {"request": {"method": "DELETE", "url": f"Patient/{pid}"}},
    ]
    response = client.post("/fhir", data=json.dumps({"resourceType": "Bundle", "type": "batch", "entry": entries}), headers=FHIR_JSON)
    assert response.status_code == 200
    results = body(response)["entry"]
    assert body(response)["type"] == "batch-response"
    assert [r["response"]["status"].split()[0] for r in results] == ["201", "400", "422", "200", "404", "200"]
    assert results[1]["response"]["outcome"]["resourceType"] == "OperationOutcome"
    assert results[3]["resource"]["id"] == pid
    assert client.get(f"/fhir/Patient/{pid}").status_code == 410


def test_post_base_needs_a_transaction_or_batch(client):
    assert client.post("/fhir", data=json.dumps({"resourceType": "Bundle", "type": "collection"}), headers=FHIR_JSON).status_code == 400
    assert client.post("/fhir", data=json.dumps({"resourceType": "Patient"}), headers=FHIR_JSON).status_code == 400


def test_conditional_update_zero_one_many(client):
    url = "/fhir/Patient?identifier=urn:mrn|CU1"
    patient = {"resourceType": "Patient", "identifier": [{"system": "urn:mrn", "value": "CU1"}]}
    created = client.put(url, data=json.dumps(patient), headers=FHIR_JSON)
    assert created.status_code == 201
    rid = body(created)["id"]
    updated = client.put(url, data=json.dumps({**patient, "gender": "male"}), headers=FHIR_JSON)
    assert updated.status_code == 200 and body(updated)["id"] == rid and body(updated)["meta"]["versionId"] == "2"
    wrong_id = client.put(url, data=json.dumps({**patient, "id": "someone-else"}), headers=FHIR_JSON)
    assert wrong_id.status_code == 400
    created_id(post(client, patient))
    assert client.put(url, data=json.dumps(patient), headers=FHIR_JSON).status_code == 412
    assert client.put("/fhir/Patient", data=json.dumps(patient), headers=FHIR_JSON).status_code == 400
    assert client.put("/fhir/Patient?shoe=1", data=json.dumps(patient), headers=FHIR_JSON).status_code == 400


def test_conditional_delete_zero_one_many(client):
    assert client.delete("/fhir/Patient?identifier=urn:mrn|none").status_code == 200
    rid = created_id(post(client, {"resourceType": "Patient", "identifier": [{"system": "urn:mrn", "value": "CD1"}]}))
    assert client.delete("/fhir/Patient?identifier=urn:mrn|CD1").status_code == 200
    assert client.get(f"/fhir/Patient/{rid}").status_code == 410
    for _ in range(2):
        created_id(post(client, {"resourceType": "Patient", "identifier": [{"system": "urn:mrn", "value": "CD2"}]}))
    assert client.delete("/fhir/Patient?identifier=urn:mrn|CD2").status_code == 412
    assert len(ids(client, "/fhir/Patient", identifier="urn:mrn|CD2")) == 2
