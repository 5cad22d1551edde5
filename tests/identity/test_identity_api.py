"""Identifier rules on the FHIR API: 422 with a precise message, warnings beside the stored
resource, one active Patient per national ID, identifier history, coverage cards, facilities."""

from __future__ import annotations

import json

from ehr.identity.systems import IdentifierSystems
from fhir_helpers import FHIR_JSON, body, created_id, outcome_expressions, post, put
from search_helpers import ids

S = IdentifierSystems()


def patient(number: str | None = None, **extra):
    doc = {"resourceType": "Patient", "name": [{"text": "Phạm Thị Định Danh"}], **extra}
    if number:
        doc["identifier"] = [{"system": S.cccd, "value": number}]
    return doc


def test_cccd_must_be_12_digits(client):
    response = post(client, patient("07918801234"))
    assert response.status_code == 422
    assert outcome_expressions(response) == ["Patient.identifier[0].value"]
    assert "exactly 12 digits" in body(response)["issue"][0]["diagnostics"]
    assert b"07918801234" not in response.data


def test_structure_warnings_come_with_the_stored_resource(client):
    doc = patient("001090012345", birthDate="1991-05-01", gender="female")
    response = post(client, doc)
    assert response.status_code == 201 and body(response)["resourceType"] == "Patient"
    outcome = json.loads(response.headers["X-FHIR-OperationOutcome"])
    assert {i["severity"] for i in outcome["issue"]} == {"warning"}
    assert len(outcome["issue"]) == 2  # sex digit and birth-year digits disagree
    response = post(client, patient("001190012346", birthDate="1991-05-01", gender="female"), Prefer="return=OperationOutcome")
    assert [i["severity"] for i in body(response)["issue"]] == ["information", "warning"]
    clean = post(client, patient("001190012347", birthDate="1990-05-01", gender="female"))
    assert "X-FHIR-OperationOutcome" not in clean.headers


def test_second_active_patient_with_the_same_cccd_is_409(client):
    first = created_id(post(client, patient("079188000777")))
    response = post(client, patient(" 0791 8800 0777 "))
    assert response.status_code == 409 and outcome_expressions(response) == ["Patient.identifier[0].value"]
    assert b"079188000777" not in response.data
    # Updating the holder itself is fine; an inactive patient does not count.
    assert put(client, {**patient("079188000777"), "id": first, "gender": "male"}).status_code == 200
    assert post(client, {**patient("079188000777"), "active": False}).status_code == 201


def test_identifier_history_cancelled_number_stays_findable(client):
    old = {"system": S.cccd, "value": "001090000001", "use": "old", "period": {"start": "2016-01-01", "end": "2024-06-30"}}
    pid = created_id(post(client, {"resourceType": "Patient", "identifier": [old, {"system": S.cccd, "value": "001090000002"}]}))
    # The cancelled number no longer counts for uniqueness, but still finds its patient.
    other = created_id(post(client, patient("001090000001")))
    assert ids(client, "/fhir/Patient", identifier=f"{S.cccd}|001090000001") == {pid, other}
    assert post(client, patient("001090000002")).status_code == 409


def test_local_record_number_linked_to_a_cccd_later(client):
    pid = created_id(post(client, {"resourceType": "Patient", "identifier": [{"system": S.mrn("01001"), "value": "BN-0042"}]}))
    linked = {"resourceType": "Patient", "id": pid, "identifier": [{"system": S.mrn("01001"), "value": "BN-0042"}, {"system": S.cccd, "value": "001090000042"}]}
    assert put(client, linked).status_code == 200
    assert ids(client, "/fhir/Patient", identifier="001090000042") == {pid}
    assert post(client, patient("001090000042")).status_code == 409


def test_conditional_create_on_a_cccd(client):
    first = post(client, patient("001090000055"), **{"If-None-Exist": f"identifier={S.cccd}|001090000055"})
    again = post(client, patient("001090000055"), **{"If-None-Exist": "identifier=001090000055"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert body(first)["id"] == body(again)["id"]


def test_coverage_bhyt_forms_and_classes(client):
    pid = created_id(post(client, patient()))
    group = {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/coverage-class", "code": "group"}]}, "value": "DN"}
    coverage = {"resourceType": "Coverage", "status": "active", "beneficiary": {"reference": f"Patient/{pid}"}, "payor": [{"display": "BHXH Việt Nam"}],
                "identifier": [{"system": S.bhyt, "value": "DN4010123456789"}], "class": [group]}
    assert post(client, coverage).status_code == 201
    assert post(client, {**coverage, "class": [{**group, "value": "HT"}]}).status_code == 422
    bad = post(client, {**coverage, "identifier": [{"system": S.bhyt, "value": "DN9010123456789"}], "class": [group]})
    assert bad.status_code == 422 and "benefit-level" in body(bad)["issue"][0]["diagnostics"]
    for form in ("0123456789", "079188012345"):
        assert post(client, {**coverage, "identifier": [{"system": S.bhyt, "value": form}]}).status_code == 201


def test_facility_code_on_organization(client):
    org = {"resourceType": "Organization", "name": "Bệnh viện Bạch Mai", "identifier": [{"system": S.facility, "value": "01001"}]}
    assert post(client, org).status_code == 201
    assert post(client, {**org, "identifier": [{"system": S.facility, "value": "1001"}]}).status_code == 422


def test_temporary_id_may_not_look_like_a_cccd(client):
    newborn = {"resourceType": "Patient", "identifier": [{"system": S.temporary, "value": "079188012345"}]}
    assert post(client, newborn).status_code == 422
    newborn["identifier"][0]["value"] = "TMP-20261124-ABCDEF"
    assert post(client, newborn).status_code == 201


def test_naming_systems_are_served(app, client):
    result = app.test_cli_runner().invoke(args=["ehr", "conformance", "sync"])
    assert result.exit_code == 0, result.output
    again = app.test_cli_runner().invoke(args=["ehr", "conformance", "sync"])
    assert "0 written" in again.output
    doc = body(client.get("/fhir/NamingSystem?_count=50"))
    uris = {u["value"] for e in doc["entry"] for u in e["resource"]["uniqueId"]}
    assert {S.cccd, S.cmnd, S.bhyt, S.bhxh, S.facility, S.temporary} <= uris
    assert client.get("/fhir/OperationDefinition/Patient-merge").status_code == 200
    assert client.get("/fhir/SearchParameter/Patient-birthdate").status_code == 200


def test_qr_endpoint(client):
    payload = "001090012345|123456789|Nguyễn Văn An|14051990|Nam|Phường Bến Thành, Thành phố Hồ Chí Minh|01072021"
    response = client.post("/fhir/Patient/$from-cccd-qr", data=json.dumps({"resourceType": "Parameters", "parameter": [{"name": "payload", "valueString": payload}]}), headers=FHIR_JSON)
    assert response.status_code == 200
    draft = body(response)
    assert draft["identifier"][0]["value"] == "001090012345" and draft["name"][0]["family"] == "Nguyễn"
    assert ids(client, "/fhir/Patient") == set()  # nothing stored
    plain = client.post("/fhir/Patient/$from-cccd-qr", data=payload.replace("14051990", "99999999").encode(), headers={"Content-Type": "text/plain; charset=utf-8"})
    assert plain.status_code == 422 and "field 4" in body(plain)["issue"][0]["diagnostics"]
