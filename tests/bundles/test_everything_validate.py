"""Patient/$everything (contents, _type, _since, paging) and $validate in its three modes."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from fhir_helpers import FHIR_JSON, body, created_id, post


def _all(client, url):
    seen, pages = [], 0
    while url:
        doc = body(client.get(url))
        seen += [(e["resource"]["resourceType"], e["resource"]["id"]) for e in doc.get("entry", [])]
        nxt = [link["url"] for link in doc["link"] if link["relation"] == "next"]
        url = (lambda p: f"{p.path}?{p.query}")(urlsplit(nxt[0])) if nxt else None
        pages += 1
    return seen, pages


def _record(client):
    org = created_id(post(client, {"resourceType": "Organization", "name": "Phòng khám"}))
    doc = created_id(post(client, {"resourceType": "Practitioner"}))
    pid = created_id(post(client, {"resourceType": "Patient", "managingOrganization": {"reference": f"Organization/{org}"}}))
    other = created_id(post(client, {"resourceType": "Patient"}))
    enc = created_id(post(client, {"resourceType": "Encounter", "status": "finished", "class": {"code": "AMB"}, "subject": {"reference": f"Patient/{pid}"},
                                   "participant": [{"individual": {"reference": f"Practitioner/{doc}"}}]}))
    obs = [created_id(post(client, {"resourceType": "Observation", "status": "final", "code": {"text": str(i)}, "subject": {"reference": f"Patient/{pid}"}})) for i in range(5)]
    performed = created_id(post(client, {"resourceType": "Observation", "status": "final", "code": {"text": "p"}, "subject": {"reference": f"Patient/{other}"},
                                         "performer": [{"reference": f"Patient/{pid}"}]}))
    created_id(post(client, {"resourceType": "Observation", "status": "final", "code": {"text": "o"}, "subject": {"reference": f"Patient/{other}"}}))
    return pid, {("Patient", pid), ("Organization", org), ("Practitioner", doc), ("Encounter", enc), ("Observation", performed), *(("Observation", o) for o in obs)}


def test_everything_holds_the_compartment_and_what_it_references(client):
    pid, expected = _record(client)
    seen, pages = _all(client, f"/fhir/Patient/{pid}/$everything?_count=3")
    assert seen[0] == ("Patient", pid)
    assert set(seen) == expected and len(seen) == len(expected)
    assert pages == 4
    first = body(client.get(f"/fhir/Patient/{pid}/$everything"))
    assert first["total"] == len(expected)


def test_everything_type_and_since(client):
    pid, expected = _record(client)
    only_obs, _ = _all(client, f"/fhir/Patient/{pid}/$everything?_type=Observation")
    assert set(only_obs) == {k for k in expected if k[0] == "Observation"}
    assert _all(client, f"/fhir/Patient/{pid}/$everything?_since=2999-01-01T00:00:00Z")[0] == []
    assert client.get("/fhir/Patient/nobody/$everything").status_code == 404


def test_type_level_everything_pages_through_all_patients(client):
    pid, expected = _record(client)
    seen, _ = _all(client, "/fhir/Patient/$everything?_count=4")
    assert expected <= set(seen)


def _validate(client, path, doc=None, mode=None):
    payload = doc if mode is None else {"resourceType": "Parameters", "parameter": [p for p in ({"name": "resource", "resource": doc} if doc else None, {"name": "mode", "valueCode": mode}) if p]}
    response = client.post(path, data=json.dumps(payload) if payload else b"", headers=FHIR_JSON)
    assert response.status_code == 200, response.data
    return body(response)["issue"]


def test_validate_modes_store_nothing(client):
    ok = _validate(client, "/fhir/Patient/$validate", {"resourceType": "Patient", "gender": "female"})
    assert ok[0]["severity"] == "information"
    bad = _validate(client, "/fhir/Observation/$validate", {"resourceType": "Observation", "status": "final"})
    assert bad[0]["severity"] == "error" and bad[0]["expression"] == ["Observation.code"]
    dangling = _validate(client, "/fhir/Observation/$validate", {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": {"reference": "Patient/none"}})
    assert dangling[0]["code"] == "business-rule"
    assert body(client.get("/fhir/Patient"))["total"] == 0
    pid = created_id(post(client, {"resourceType": "Patient"}))
    assert _validate(client, f"/fhir/Patient/{pid}/$validate", {"resourceType": "Patient", "id": pid}, "update")[0]["severity"] == "information"
    assert _validate(client, f"/fhir/Patient/{pid}/$validate", {"resourceType": "Patient", "id": "other"}, "update")[0]["severity"] == "error"
    assert _validate(client, f"/fhir/Patient/{pid}/$validate", None, "delete")[0]["severity"] == "information"
    created_id(post(client, {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": {"reference": f"Patient/{pid}"}}))
    assert _validate(client, f"/fhir/Patient/{pid}/$validate", None, "delete")[0]["code"] == "conflict"
    assert client.get(f"/fhir/Patient/{pid}").get_json()["meta"]["versionId"] == "1"


def test_validate_any_r4_type_including_the_invalid_parameters_file(client):
    path = __file__.rsplit("/tests/", 1)[0] + "/tests/data/fhir-r4/invalid/parameters-attachment.json"
    with open(path, encoding="utf-8") as fh:
        raw = json.load(fh)
    issues = _validate(client, "/fhir/Parameters/$validate", raw)
    assert issues[0]["severity"] == "error" and "base64" in issues[0]["diagnostics"]
    good = {"resourceType": "Parameters", "parameter": [{"name": "x", "valueString": "y"}]}
    assert _validate(client, "/fhir/Parameters/$validate", good)[0]["severity"] == "information"
