"""Length limits of free text on every write path of the FHIR API (ehr/fhir/text_limits.py): an
OperationOutcome naming the element and the limit, never the value, and nothing written."""

from __future__ import annotations

import base64
import json
from typing import Any

from fhir_helpers import FHIR_JSON, body, created_id, outcome_codes, outcome_expressions, patient, post, put

LONG_NAME = "Nguyễn" + "a" * 4994  # 5,000 characters
LONG_DRUG = "Paracetamol " + "5" * 4988


def _total(client: Any, resource_type: str) -> int:
    return int(body(client.get(f"/fhir/{resource_type}?_total=accurate", headers=FHIR_JSON))["total"])


def _refused(response: Any, expression: str, limit: str) -> dict[str, Any]:
    assert response.status_code == 422, response.data
    assert "too-long" in outcome_codes(response)
    assert expression in outcome_expressions(response)
    issue = next(i for i in body(response)["issue"] if expression in i.get("expression", []))
    assert limit in issue["diagnostics"] and "5,000" in issue["diagnostics"]
    assert b"aaaaaaaaaa" not in response.data and b"5555555555" not in response.data  # the value is not echoed
    return issue


def _medication_request(subject: str, drug: str) -> dict[str, Any]:
    return {"resourceType": "MedicationRequest", "status": "active", "intent": "order", "subject": {"reference": subject},
            "medicationCodeableConcept": {"text": drug}}


def test_post_with_a_5000_character_family_name_is_refused_and_nothing_written(client):
    before = _total(client, "Patient")
    response = post(client, {"resourceType": "Patient", "name": [{"family": LONG_NAME, "given": ["Lan"]}]})
    _refused(response, "Patient.name[0].family", "100")
    assert _total(client, "Patient") == before


def test_post_with_a_5000_character_drug_name_is_refused(client):
    pid = created_id(post(client, patient()))
    before = _total(client, "MedicationRequest")
    response = post(client, _medication_request(f"Patient/{pid}", LONG_DRUG))
    _refused(response, "MedicationRequest.medicationCodeableConcept.text", "200")
    assert _total(client, "MedicationRequest") == before


def test_contained_resources_are_checked_too(client):
    pid = created_id(post(client, patient()))
    doc = _medication_request(f"Patient/{pid}", "Paracetamol 500 mg")
    del doc["medicationCodeableConcept"]
    doc["medicationReference"] = {"reference": "#med"}
    doc["contained"] = [{"resourceType": "Medication", "id": "med", "code": {"text": LONG_DRUG}}]
    _refused(post(client, doc), "MedicationRequest.contained[0].code.text", "200")


def test_put_is_refused_and_the_stored_version_stays(client):
    pid = created_id(post(client, patient("Trần Văn Bình")))
    response = put(client, {"resourceType": "Patient", "id": pid, "name": [{"family": LONG_NAME}]})
    _refused(response, "Patient.name[0].family", "100")
    stored = body(client.get(f"/fhir/Patient/{pid}", headers=FHIR_JSON))
    assert stored["meta"]["versionId"] == "1" and stored["name"][0]["family"] == "Trần"


def test_patch_is_refused_and_nothing_written(client):
    pid = created_id(post(client, patient("Lê Thị Cúc")))
    ops = [{"op": "replace", "path": "/name/0/family", "value": LONG_NAME}]
    response = client.patch(f"/fhir/Patient/{pid}", data=json.dumps(ops), headers={"Content-Type": "application/json-patch+json"})
    _refused(response, "Patient.name[0].family", "100")
    assert body(client.get(f"/fhir/Patient/{pid}", headers=FHIR_JSON))["meta"]["versionId"] == "1"


def _bundle(kind: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": entries}


def test_transaction_entry_is_refused_and_the_whole_transaction_rolled_back(client):
    before = (_total(client, "Patient"), _total(client, "MedicationRequest"))
    entries = [
        {"fullUrl": "urn:uuid:8c7a0e9e-58a4-4d1b-9a57-3a8c3e0e0f01", "resource": patient("Phạm Văn Dũng"),
         "request": {"method": "POST", "url": "Patient"}},
        {"resource": _medication_request("urn:uuid:8c7a0e9e-58a4-4d1b-9a57-3a8c3e0e0f01", LONG_DRUG),
         "request": {"method": "POST", "url": "MedicationRequest"}},
    ]
    response = client.post("/fhir", data=json.dumps(_bundle("transaction", entries)), headers=FHIR_JSON)
    issue = _refused(response, "Bundle.entry[1].resource.medicationCodeableConcept.text", "200")
    assert issue["diagnostics"].startswith("entry 1:")
    assert (_total(client, "Patient"), _total(client, "MedicationRequest")) == before


def test_transaction_patch_entry_is_refused(client):
    pid = created_id(post(client, patient("Hoàng Văn Em")))
    ops = base64.b64encode(json.dumps([{"op": "replace", "path": "/name/0/family", "value": LONG_NAME}]).encode()).decode()
    entry = {"resource": {"resourceType": "Binary", "contentType": "application/json-patch+json", "data": ops},
             "request": {"method": "PATCH", "url": f"Patient/{pid}"}}
    response = client.post("/fhir", data=json.dumps(_bundle("transaction", [entry])), headers=FHIR_JSON)
    _refused(response, "Bundle.entry[0].resource.name[0].family", "100")
    assert body(client.get(f"/fhir/Patient/{pid}", headers=FHIR_JSON))["meta"]["versionId"] == "1"


def test_batch_entry_answers_its_own_422(client):
    before = _total(client, "Patient")
    entries = [{"resource": {"resourceType": "Patient", "name": [{"family": LONG_NAME}]}, "request": {"method": "POST", "url": "Patient"}},
               {"resource": patient("Vũ Thị Gấm"), "request": {"method": "POST", "url": "Patient"}}]
    response = client.post("/fhir", data=json.dumps(_bundle("batch", entries)), headers=FHIR_JSON)
    assert response.status_code == 200
    first, second = body(response)["entry"]
    assert first["response"]["status"].startswith("422")
    outcome = first["response"]["outcome"]
    assert outcome["issue"][0]["code"] == "too-long" and "Bundle.entry[0].resource.name[0].family" in outcome["issue"][0]["expression"]
    assert second["response"]["status"].startswith("201")
    assert _total(client, "Patient") == before + 1


def test_validate_reports_the_element_and_stores_nothing(client):
    before = _total(client, "Patient")
    response = client.post("/fhir/Patient/$validate", data=json.dumps({"resourceType": "Patient", "name": [{"family": LONG_NAME}]}),
                           headers=FHIR_JSON)
    assert response.status_code == 200  # $validate always answers 200 with its findings
    issues = [i for i in body(response)["issue"] if i["severity"] == "error"]
    assert issues and issues[0]["code"] == "too-long" and issues[0]["expression"] == ["Patient.name[0].family"]
    assert _total(client, "Patient") == before


def test_text_within_its_limit_is_stored(client):
    pid = created_id(post(client, patient()))
    note = "Bệnh nhân sốt cao 3 ngày, ho khan, không khó thở. " * 90  # about 4,600 characters: under 5,000
    assert 4000 < len(note) < 5000
    doc = {**_medication_request(f"Patient/{pid}", "Amoxicillin 500 mg viên nang cứng " + "x" * 150), "note": [{"text": note}]}
    assert len(doc["medicationCodeableConcept"]["text"]) <= 200
    stored = body(post(client, doc))
    assert stored["note"][0]["text"] == note
    family = "N" * 100  # exactly the limit
    assert post(client, {"resourceType": "Patient", "name": [{"family": family}]}).status_code == 201
