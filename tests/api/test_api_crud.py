"""Create, read, vread, update, patch, delete over HTTP (Flask test client)."""

from __future__ import annotations

import json
import re

import pytest

from fhir_helpers import FHIR_JSON, body, created_id, outcome_codes, patient, post, put

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def test_create_assigns_random_id_location_and_etag(client):
    response = post(client, patient(id="client-chosen", meta={"versionId": "99", "lastUpdated": "2001-01-01T00:00:00Z"}))
    assert response.status_code == 201
    doc = body(response)
    assert UUID.match(doc["id"]) and doc["id"] != "client-chosen"
    assert doc["meta"]["versionId"] == "1" and not doc["meta"]["lastUpdated"].startswith("2001")
    assert response.headers["ETag"] == 'W/"1"'
    assert response.headers["Location"].endswith(f"/fhir/Patient/{doc['id']}/_history/1")
    assert response.headers["Last-Modified"].endswith("GMT")
    assert response.headers["Content-Type"] == "application/fhir+json; charset=utf-8"


def test_read_returns_what_was_stored_with_decimal_precision(client):
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "glucose"}, "valueQuantity": {"value": 0.010}}
    raw = json.dumps(obs).replace("0.01", "0.010")
    response = client.post("/fhir/Observation", data=raw, headers=FHIR_JSON)
    rid = created_id(response)
    read = client.get(f"/fhir/Observation/{rid}")
    assert read.status_code == 200
    assert b'"value":0.010' in read.data
    assert read.headers["ETag"] == 'W/"1"'


def test_read_unknown_id_is_404_and_bad_id_is_400(client):
    assert client.get("/fhir/Patient/does-not-exist").status_code == 404
    assert client.get("/fhir/Patient/bad_id!").status_code == 400


def test_update_bumps_version_and_keeps_history(client):
    rid = created_id(post(client, patient()))
    changed = patient("Nguyễn Văn Bình", id=rid)
    response = put(client, changed)
    assert response.status_code == 200
    assert body(response)["meta"]["versionId"] == "2"
    assert body(client.get(f"/fhir/Patient/{rid}/_history/1"))["name"][0]["text"] == "Nguyễn Văn An"
    assert body(client.get(f"/fhir/Patient/{rid}/_history/2"))["name"][0]["text"] == "Nguyễn Văn Bình"
    assert client.get(f"/fhir/Patient/{rid}/_history/3").status_code == 404


def test_update_as_create_with_client_id_is_201(client):
    response = put(client, patient(id="vn-clinic-1"))
    assert response.status_code == 201
    assert response.headers["Location"].endswith("/fhir/Patient/vn-clinic-1/_history/1")
    assert put(client, patient(id="vn-clinic-1")).status_code == 200


def test_if_match_conflict_is_412_and_match_succeeds(client):
    rid = created_id(post(client, patient()))
    assert put(client, patient(id=rid), **{"If-Match": 'W/"7"'}).status_code == 412
    assert put(client, patient(id=rid), **{"If-Match": 'W/"1"'}).status_code == 200
    assert client.delete(f"/fhir/Patient/{rid}", headers={"If-Match": 'W/"1"'}).status_code == 412


def test_conditional_read_answers_304(client):
    response = post(client, patient())
    rid = created_id(response)
    assert client.get(f"/fhir/Patient/{rid}", headers={"If-None-Match": 'W/"1"'}).status_code == 304
    assert client.get(f"/fhir/Patient/{rid}", headers={"If-None-Match": 'W/"2"'}).status_code == 200
    stamp = response.headers["Last-Modified"]
    assert client.get(f"/fhir/Patient/{rid}", headers={"If-Modified-Since": stamp}).status_code == 304
    assert client.get(f"/fhir/Patient/{rid}", headers={"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}).status_code == 200


def test_patch_applies_json_patch(client):
    rid = created_id(post(client, patient(gender="male")))
    ops = [{"op": "replace", "path": "/gender", "value": "female"}, {"op": "add", "path": "/active", "value": True}]
    response = client.patch(f"/fhir/Patient/{rid}", data=json.dumps(ops), headers={"Content-Type": "application/json-patch+json"})
    assert response.status_code == 200
    doc = body(response)
    assert doc["gender"] == "female" and doc["active"] is True and doc["meta"]["versionId"] == "2"


def test_patch_failures(client):
    rid = created_id(post(client, patient()))
    headers = {"Content-Type": "application/json-patch+json"}
    bad_test = [{"op": "test", "path": "/gender", "value": "male"}]
    assert client.patch(f"/fhir/Patient/{rid}", data=json.dumps(bad_test), headers=headers).status_code == 422
    invalid_result = [{"op": "add", "path": "/active", "value": "yes"}]
    response = client.patch(f"/fhir/Patient/{rid}", data=json.dumps(invalid_result), headers=headers)
    assert response.status_code == 422 and "Patient.active" in json.dumps(body(response))
    change_id = [{"op": "replace", "path": "/id", "value": "other"}]
    assert client.patch(f"/fhir/Patient/{rid}", data=json.dumps(change_id), headers=headers).status_code == 422
    assert client.patch(f"/fhir/Patient/{rid}", data='{"op": "add"}', headers=headers).status_code == 400
    assert client.patch(f"/fhir/Patient/{rid}", data=json.dumps(change_id), headers=FHIR_JSON).status_code == 415


def test_delete_then_read_is_410(client):
    rid = created_id(post(client, patient()))
    response = client.delete(f"/fhir/Patient/{rid}")
    assert response.status_code == 200 and response.headers["ETag"] == 'W/"2"'
    gone = client.get(f"/fhir/Patient/{rid}")
    assert gone.status_code == 410 and outcome_codes(gone) == ["deleted"]
    assert client.delete(f"/fhir/Patient/{rid}").status_code == 200  # idempotent
    assert client.delete("/fhir/Patient/never-was").status_code == 404
    assert client.get(f"/fhir/Patient/{rid}/_history/1").status_code == 200  # history survives
    assert client.get(f"/fhir/Patient/{rid}/_history/2").status_code == 410


def test_update_after_delete_recreates(client):
    rid = created_id(post(client, patient()))
    client.delete(f"/fhir/Patient/{rid}")
    response = put(client, patient(id=rid))
    assert response.status_code == 201 and body(response)["meta"]["versionId"] == "3"


def test_prefer_return(client):
    minimal = post(client, patient(), Prefer="return=minimal")
    assert minimal.status_code == 201 and minimal.data == b"" and minimal.headers["Location"]
    outcome = post(client, patient(), Prefer="return=OperationOutcome")
    assert outcome.status_code == 201 and body(outcome)["resourceType"] == "OperationOutcome"
    full = post(client, patient(), Prefer="return=representation")
    assert body(full)["resourceType"] == "Patient"


def test_format_parameter_and_accept(client):
    rid = created_id(post(client, patient()))
    assert client.get(f"/fhir/Patient/{rid}?_format=json").status_code == 200
    assert client.get(f"/fhir/Patient/{rid}?_format=application/fhir%2Bjson").status_code == 200
    as_json = client.get(f"/fhir/Patient/{rid}", headers={"Accept": "application/json"})
    assert as_json.headers["Content-Type"].startswith("application/json")
    assert client.get(f"/fhir/Patient/{rid}?_format=xml").status_code == 406
    assert client.get(f"/fhir/Patient/{rid}", headers={"Accept": "application/fhir+xml"}).status_code == 406


def test_audit_event_is_read_only_for_clients(client):
    event = {"resourceType": "AuditEvent", "type": {"code": "rest"}, "recorded": "2026-01-01T00:00:00Z",
             "agent": [{"requestor": True}], "source": {"observer": {"display": "x"}}}
    assert post(client, event).status_code == 405
    assert put(client, {**event, "id": "a1"}).status_code == 405


# --- every in-scope type (issue 2) through the same interactions ----------------------------------

CONSENT_TEXT = "https://fhir.ehr-vn.org/consent-text/share-records/v1"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"


def _minimal(rtype: str, pid: str, org: str, doc: str) -> dict:
    """A minimal valid resource of each type; references point at the Patient, Organization and
    Practitioner made first (the referenced resources must exist)."""
    subject, cc = {"reference": f"Patient/{pid}"}, {"text": "x"}
    return {"resourceType": rtype, **{
        "Patient": {"name": [{"text": "Võ Thị Bảng"}]},
        "RelatedPerson": {"patient": subject},
        "Practitioner": {"name": [{"text": "BS. Đặng Văn Lâm"}]},
        "PractitionerRole": {"practitioner": {"reference": f"Practitioner/{doc}"}, "organization": {"reference": f"Organization/{org}"}},
        "Organization": {"name": "Trạm y tế xã"},
        "Location": {"name": "Phòng khám 1", "managingOrganization": {"reference": f"Organization/{org}"}},
        "Encounter": {"status": "finished", "class": {"code": "AMB"}, "subject": subject},
        "Observation": {"status": "final", "code": cc, "subject": subject},
        "Condition": {"code": cc, "subject": subject},
        "AllergyIntolerance": {"code": cc, "patient": subject},
        "MedicationRequest": {"status": "active", "intent": "order", "medicationCodeableConcept": cc, "subject": subject},
        "Medication": {"code": cc},
        "Immunization": {"status": "completed", "vaccineCode": cc, "patient": subject, "occurrenceDateTime": "2025-03-01"},
        "Procedure": {"status": "completed", "code": cc, "subject": subject},
        "FamilyMemberHistory": {"status": "completed", "patient": subject, "relationship": cc},
        "DiagnosticReport": {"status": "final", "code": cc, "subject": subject},
        "DocumentReference": {"status": "current", "subject": subject, "content": [{"attachment": {"contentType": "text/plain", "data": "eA=="}}]},
        "Composition": {"status": "final", "type": cc, "subject": subject, "date": "2025-03-01", "author": [{"reference": f"Practitioner/{doc}"}], "title": "Tóm tắt"},
        "Appointment": {"status": "booked", "participant": [{"actor": subject, "status": "accepted"}]},
        "CarePlan": {"status": "active", "intent": "plan", "subject": subject},
        "Consent": {"status": "active", "scope": {"coding": [{"code": "patient-privacy"}]}, "category": [cc], "patient": subject,
                    "dateTime": "2025-03-01T08:00:00+07:00", "performer": [subject], "policy": [{"uri": CONSENT_TEXT}],
                    "provision": {"type": "permit", "purpose": [{"system": ACT_REASON, "code": "TREAT"}]}},
        "Provenance": {"target": [subject], "recorded": "2025-03-01T08:00:00+07:00", "agent": [{"who": {"reference": f"Practitioner/{doc}"}}]},
        "Coverage": {"status": "active", "beneficiary": subject, "payor": [{"reference": f"Organization/{org}"}]},
    }[rtype]}


CORE_TYPES = ["Patient", "RelatedPerson", "Practitioner", "PractitionerRole", "Organization", "Location", "Encounter", "Observation",
              "Condition", "AllergyIntolerance", "MedicationRequest", "Medication", "Immunization", "Procedure", "FamilyMemberHistory",
              "DiagnosticReport", "DocumentReference", "Composition", "Appointment", "CarePlan", "Consent", "Provenance", "Coverage"]


@pytest.mark.parametrize("rtype", CORE_TYPES)
def test_core_interactions_for_every_type(client, rtype):
    org = created_id(post(client, {"resourceType": "Organization", "name": "Bệnh viện huyện"}))
    doc = created_id(post(client, {"resourceType": "Practitioner"}))
    pid = created_id(post(client, patient()))
    resource = _minimal(rtype, pid, org, doc)
    rid = created_id(post(client, resource))
    path = f"/fhir/{rtype}/{rid}"
    read = client.get(path)
    assert read.status_code == 200 and read.headers["ETag"] == 'W/"1"'
    assert {k: v for k, v in body(read).items() if k not in ("id", "meta")} == resource
    assert put(client, {**resource, "id": rid, "language": "vi"}, **{"If-Match": 'W/"7"'}).status_code == 412
    updated = put(client, {**resource, "id": rid, "language": "vi"}, **{"If-Match": 'W/"1"'})
    assert updated.status_code == 200 and body(updated)["meta"]["versionId"] == "2"
    ops = json.dumps([{"op": "replace", "path": "/language", "value": "en"}])
    patched = client.patch(path, data=ops, headers={"Content-Type": "application/json-patch+json", "If-Match": 'W/"2"'})
    assert patched.status_code == 200 and body(patched)["language"] == "en" and body(patched)["meta"]["versionId"] == "3"
    assert body(client.get(f"{path}/_history/2"))["language"] == "vi"
    assert client.delete(path, headers={"If-Match": 'W/"3"'}).status_code == 200
    assert client.get(path).status_code == 410
    history = body(client.get(f"{path}/_history"))
    assert [e["response"]["etag"] for e in history["entry"]] == ['W/"4"', 'W/"3"', 'W/"2"', 'W/"1"']
    assert history["entry"][0]["request"]["method"] == "DELETE" and history["entry"][3]["request"]["method"] == "POST"
    assert rid in {e["resource"]["id"] for e in body(client.get(f"/fhir/{rtype}/_history"))["entry"] if "resource" in e}
