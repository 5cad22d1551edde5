"""Deep nesting is a 400 OperationOutcome, never a RecursionError (issue 20, finding 10).

Both were 500s: a JSON Patch value nested 500 deep overflowed JSON Patch's deepcopy, and a narrative
nested 1,500 elements deep overflowed the recursive XHTML check.
"""

from __future__ import annotations

import json

from fhir_helpers import body, created_id, outcome_codes, patient, post

PATCH = {"Content-Type": "application/json-patch+json", "Accept": "application/fhir+json"}


def _observation(client) -> str:
    pid = created_id(post(client, patient()))
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "mạch"}, "subject": {"reference": f"Patient/{pid}"}}
    return created_id(post(client, obs))


def _div(depth: int) -> str:
    return '<div xmlns="http://www.w3.org/1999/xhtml">' + "<span>" * depth + "x" + "</span>" * depth + "</div>"


def test_patch_value_500_deep_is_400(client):
    oid = _observation(client)
    value = '{"a":' * 500 + "1" + "}" * 500
    response = client.patch(f"/fhir/Observation/{oid}", data=f'[{{"op":"add","path":"/valueString","value":{value}}}]', headers=PATCH)
    assert response.status_code == 400
    assert outcome_codes(response) == ["invalid"]
    assert client.get(f"/fhir/Observation/{oid}").status_code == 200  # unchanged, still readable


def test_patch_just_under_the_json_limit_is_a_422_not_a_500(client):
    oid = _observation(client)
    value = '{"a":' * 150 + "1" + "}" * 150
    response = client.patch(f"/fhir/Observation/{oid}", data=f'[{{"op":"add","path":"/valueString","value":{value}}}]', headers=PATCH)
    assert response.status_code == 422 and body(response)["resourceType"] == "OperationOutcome"


def test_narrative_1500_deep_is_400(client):
    response = post(client, patient(text={"status": "generated", "div": _div(1500)}))
    assert response.status_code == 400
    assert outcome_codes(response) == ["invariant"]


def test_narrative_1500_deep_by_patch_is_rejected(client):
    pid = created_id(post(client, patient()))
    ops = [{"op": "add", "path": "/text", "value": {"status": "generated", "div": _div(1500)}}]
    response = client.patch(f"/fhir/Patient/{pid}", data=json.dumps(ops), headers=PATCH)
    assert response.status_code == 422 and body(response)["resourceType"] == "OperationOutcome"


def test_ordinary_nesting_is_still_accepted(client):
    assert post(client, patient(text={"status": "generated", "div": _div(20)})).status_code == 201
    ext = {"url": "http://example.vn/e", "valueString": "x"}
    for _ in range(30):
        ext = {"url": "http://example.vn/e", "extension": [ext]}
    assert post(client, patient(extension=[ext])).status_code == 201
