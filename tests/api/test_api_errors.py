"""Every error is an OperationOutcome with the status of the R4 http page, naming the element and
never echoing the submitted value."""

from __future__ import annotations

import json

import pytest

from fhir_helpers import FHIR_JSON, body, created_id, outcome_codes, outcome_expressions, patient, post, put

SECRET_NAME = "Võ Thị Bímật"


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b"[]", b'{"resourceType": "Patient", "active": true, "active": false}', b"\xef\xbb\xbf{}", b"\xff\xfe",
     b'{"resourceType":"Patient","birthDate":NaN}', b'{"a":' * 5000 + b"1" + b"}" * 5000, b""],
)
def test_unparseable_bodies_are_400(client, raw):
    response = client.post("/fhir/Patient", data=raw, headers=FHIR_JSON)
    assert response.status_code == 400
    assert body(response)["resourceType"] == "OperationOutcome"


def test_validation_failure_is_400_with_expression_and_no_echo(client):
    bad = patient(SECRET_NAME, birthDate=SECRET_NAME, active="true")
    response = post(client, bad)
    assert response.status_code == 400
    assert "Patient.active" in outcome_expressions(response)
    assert SECRET_NAME.encode() not in response.data and "Bímật".encode() not in response.data


@pytest.mark.parametrize(
    "resource,expression",
    [
        ({"resourceType": "Patient", "name": []}, "Patient.name"),
        ({"resourceType": "Patient", "name": [{"given": [None]}]}, "Patient.name[0].given[0]"),
        ({"resourceType": "Patient", "unknownThing": 1}, "Patient.unknownThing"),
        ({"resourceType": "Patient", "multipleBirthInteger": 2.5}, "Patient.multipleBirthInteger"),
        ({"resourceType": "Patient", "gender": ""}, "Patient.gender"),
        ({"resourceType": "Observation", "status": "final"}, "Observation.code"),
    ],
)
def test_fhir_json_rules(client, resource, expression):
    response = post(client, resource)
    assert response.status_code == 400
    assert expression in outcome_expressions(response)


def test_script_in_narrative_is_refused(client):
    div = '<div xmlns="http://www.w3.org/1999/xhtml"><p onclick="x()">hi</p></div>'
    response = post(client, patient(text={"status": "generated", "div": div}))
    assert response.status_code == 400 and "Patient.text.div" in outcome_expressions(response)


def test_wrong_type_and_id_mismatch_are_400(client):
    response = client.post("/fhir/Patient", data=json.dumps({"resourceType": "Observation"}), headers=FHIR_JSON)
    assert response.status_code == 400 and outcome_expressions(response) == ["resourceType"]
    rid = created_id(post(client, patient()))
    assert put(client, patient(id="other-id") | {"id": "other-id"}).status_code in (200, 201)  # own URL: fine
    mismatch = client.put(f"/fhir/Patient/{rid}", data=json.dumps(patient(id="other-id")), headers=FHIR_JSON)
    assert mismatch.status_code == 400
    no_id = client.put(f"/fhir/Patient/{rid}", data=json.dumps(patient()), headers=FHIR_JSON)
    assert no_id.status_code == 400


def test_unknown_type_and_routes_are_404_outcomes(client):
    for path in ("/fhir/Foo", "/fhir/Foo/1", "/fhir/Patient/1/2/3/4", "/fhir/OperationOutcome/1"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert outcome_codes(response) == ["not-found"]
    assert b"Foo" not in client.get("/fhir/Foo").data


def test_method_not_allowed_is_405_outcome(client):
    response = client.delete("/fhir/metadata")
    assert response.status_code == 405 and outcome_codes(response) == ["not-supported"]
    assert client.post("/fhir/Patient/123", data="{}", headers=FHIR_JSON).status_code == 405


def test_unsupported_media_types_are_415(client):
    data = json.dumps(patient())
    assert client.post("/fhir/Patient", data=data, headers={"Content-Type": "application/fhir+xml"}).status_code == 415
    assert client.post("/fhir/Patient", data=data, headers={"Content-Type": "text/plain"}).status_code == 415
    assert client.post("/fhir/Patient", data=data).status_code == 415
    latin = {"Content-Type": "application/fhir+json; charset=latin-1"}
    assert client.post("/fhir/Patient", data=data, headers=latin).status_code == 415


def test_body_over_limit_is_413(app, client):
    limit = app.config["MAX_CONTENT_LENGTH"]
    assert limit >= 8 * 1024 * 1024  # real batch bundles of several MB fit
    response = client.post("/fhir/Patient", data=b"x" * (limit + 1), headers=FHIR_JSON)
    assert response.status_code == 413 and outcome_codes(response) == ["too-long"]


def test_reference_to_nothing_is_422(client):
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": {"reference": "Patient/ghost"}}
    response = post(client, obs)
    assert response.status_code == 422 and outcome_expressions(response) == ["Observation.subject"]
    obs["subject"] = {"reference": "urn:uuid:5b1e2f52-8a3c-4b8e-9d8f-1f1e2d3c4b5a"}
    assert post(client, obs).status_code == 422


def test_reference_to_deleted_resource_is_422(client):
    pid = created_id(post(client, patient()))
    client.delete(f"/fhir/Patient/{pid}")
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": {"reference": f"Patient/{pid}"}}
    assert post(client, obs).status_code == 422


def test_local_contained_reference_must_resolve(client):
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "performer": [{"reference": "#missing"}]}
    assert post(client, obs).status_code == 400


def test_deleting_a_referenced_resource_is_409(client):
    pid = created_id(post(client, patient()))
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": {"reference": f"Patient/{pid}"}}
    oid = created_id(post(client, obs))
    response = client.delete(f"/fhir/Patient/{pid}")
    assert response.status_code == 409 and outcome_codes(response) == ["conflict"]
    assert client.delete(f"/fhir/Observation/{oid}").status_code == 200
    assert client.delete(f"/fhir/Patient/{pid}").status_code == 200


def test_referential_integrity_can_be_switched_off(app, app_config):
    from ehr import create_app

    relaxed = create_app({**app_config, "EHR_REFERENTIAL_INTEGRITY": "false"})
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": {"reference": "Patient/elsewhere"}}
    try:
        response = post(relaxed.test_client(), obs)
    finally:
        relaxed.extensions["ehr.store"].engine.dispose()
    assert response.status_code == 201


def test_dot_ids_and_empty_segments_are_refused(client):
    """`..` matches the R4 id pattern but resolves as a path; an empty segment must not redirect."""
    for path in ("/fhir/Patient/..", "/fhir/Patient/."):
        response = client.put(path, data=json.dumps({"resourceType": "Patient", "id": path.rsplit("/", 1)[1]}), headers=FHIR_JSON)
        assert response.status_code in (400, 404) and response.get_json()["resourceType"] == "OperationOutcome"
    for path in ("/fhir//Patient", "/fhir/Patient/%2F/_history"):
        response = client.get(path)
        assert response.status_code == 404 and response.get_json()["resourceType"] == "OperationOutcome", path
