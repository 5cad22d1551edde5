"""Transaction bundles: all-or-nothing, reference rewriting, order, conditional entries."""

from __future__ import annotations

import base64
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from db_snapshot import snapshot
from fhir_helpers import FHIR_JSON, body, created_id, post

P = "urn:uuid:9a1b2c3d-0000-4000-8000-000000000001"
E = "urn:uuid:9a1b2c3d-0000-4000-8000-000000000002"


def tx(client, entries, kind="transaction", **headers):
    return client.post("/fhir", data=json.dumps({"resourceType": "Bundle", "type": kind, "entry": entries}), headers={**FHIR_JSON, **headers})


def post_entry(resource, full_url=None, **request):
    entry = {"resource": resource, "request": {"method": "POST", "url": resource["resourceType"], **request}}
    if full_url:
        entry["fullUrl"] = full_url
    return entry


def test_urn_uuids_are_rewritten_everywhere(client):
    patient = {"resourceType": "Patient", "name": [{"text": "Lý Thị Giao Dịch"}]}
    encounter = {"resourceType": "Encounter", "status": "finished", "class": {"code": "AMB"}, "subject": {"reference": P}}
    obs = {
        "resourceType": "Observation", "status": "final", "code": {"text": "x"},
        "subject": {"reference": P}, "encounter": {"reference": E},
        "performer": [{"reference": "#p1"}, {"reference": P}],
        "extension": [{"url": "urn:test:ext", "valueReference": {"reference": E}}],
        "contained": [{"resourceType": "Practitioner", "id": "p1"}],
        "text": {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml"><a href="{P}">bệnh nhân</a></div>'},
    }
    response = tx(client, [post_entry(obs), post_entry(encounter, E), post_entry(patient, P)])
    assert response.status_code == 200, response.data
    doc = body(response)
    assert doc["type"] == "transaction-response"
    statuses = [e["response"]["status"] for e in doc["entry"]]
    assert statuses == ["201 Created"] * 3
    obs_id, enc_id, pat_id = [e["response"]["location"].split("/")[-3] for e in doc["entry"]]
    stored = body(client.get(f"/fhir/Observation/{obs_id}"))
    assert stored["subject"]["reference"] == f"Patient/{pat_id}"
    assert stored["encounter"]["reference"] == f"Encounter/{enc_id}"
    assert stored["performer"] == [{"reference": "#p1"}, {"reference": f"Patient/{pat_id}"}]
    assert stored["extension"][0]["valueReference"]["reference"] == f"Encounter/{enc_id}"
    assert f'href="Patient/{pat_id}"' in stored["text"]["div"]
    assert all(e["response"]["etag"] == 'W/"1"' and e["response"]["lastModified"] for e in doc["entry"])


def test_failure_names_the_entry_and_rolls_back(client, store):
    before = snapshot(store)
    bad = {"resourceType": "Observation", "status": "final"}  # no code
    response = tx(client, [post_entry({"resourceType": "Patient"}, P), post_entry(bad)])
    assert response.status_code == 400
    issue = body(response)["issue"][0]
    assert issue["diagnostics"].startswith("entry 1:") and issue["expression"] == ["Bundle.entry[1].resource.code"]
    assert snapshot(store) == before


def test_duplicate_full_urls_and_references_to_nothing(client, store):
    before = snapshot(store)
    dup = tx(client, [post_entry({"resourceType": "Patient"}, P), post_entry({"resourceType": "Patient"}, P)])
    assert dup.status_code == 400 and "duplicate fullUrl" in body(dup)["issue"][0]["diagnostics"]
    dangling = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": {"reference": "urn:uuid:00000000-0000-4000-8000-00000000dead"}}
    response = tx(client, [post_entry({"resourceType": "Patient"}, P), post_entry(dangling)])
    assert response.status_code == 422 and body(response)["issue"][0]["expression"][0].startswith("Bundle.entry[1]")
    ghost = dict(dangling, subject={"reference": "Patient/ghost"})
    response = tx(client, [post_entry(ghost)])
    assert response.status_code == 422 and body(response)["issue"][0]["diagnostics"].startswith("entry 0:")
    assert snapshot(store) == before


def test_conditional_references_zero_one_many(client):
    org = {"resourceType": "Organization", "identifier": [{"system": "urn:fac", "value": "01001"}]}
    created_id(post(client, org))
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "performer": [{"reference": "Organization?identifier=urn:fac|01001"}]}
    one = tx(client, [post_entry(obs)])
    assert one.status_code == 200
    oid = body(one)["entry"][0]["response"]["location"].split("/")[-3]
    assert body(client.get(f"/fhir/Observation/{oid}"))["performer"][0]["reference"].startswith("Organization/")
    none = dict(obs, performer=[{"reference": "Organization?identifier=urn:fac|99999"}])
    assert tx(client, [post_entry(none)]).status_code == 404
    created_id(post(client, org))
    assert tx(client, [post_entry(obs)]).status_code == 412


def test_conditional_entries_and_order(client):
    existing = created_id(post(client, {"resourceType": "Patient", "identifier": [{"system": "urn:mrn", "value": "A1"}], "gender": "male"}))
    doomed = created_id(post(client, {"resourceType": "Patient", "identifier": [{"system": "urn:mrn", "value": "DEL"}]}))
    entries = [
        post_entry({"resourceType": "Patient", "identifier": [{"system": "urn:mrn", "value": "A1"}]}, P, ifNoneExist="identifier=urn:mrn|A1"),
        {"resource": {"resourceType": "Patient", "identifier": [{"system": "urn:mrn", "value": "A1"}], "gender": "female"},
         "request": {"method": "PUT", "url": "Patient?identifier=urn:mrn|A1"}},
        {"request": {"method": "DELETE", "url": "Patient?identifier=urn:mrn|DEL"}},
        post_entry({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": {"reference": P}}),
        {"request": {"method": "GET", "url": f"Patient/{existing}"}},
    ]
    response = tx(client, entries)
    assert response.status_code == 200, response.data
    results = body(response)["entry"]
    assert [r["response"]["status"] for r in results] == ["200 OK", "200 OK", "200 OK", "201 Created", "200 OK"]
    assert results[0]["response"]["location"].split("/")[-3] == existing  # matched, nothing created
    assert results[4]["resource"]["gender"] == "female"  # GET ran after the writes
    obs_id = results[3]["response"]["location"].split("/")[-3]
    assert body(client.get(f"/fhir/Observation/{obs_id}"))["subject"]["reference"] == f"Patient/{existing}"
    assert client.get(f"/fhir/Patient/{doomed}").status_code == 410


def test_patch_entry_with_binary(client):
    pid = created_id(post(client, {"resourceType": "Patient", "gender": "male"}))
    ops = base64.b64encode(json.dumps([{"op": "replace", "path": "/gender", "value": "female"}]).encode()).decode()
    entry = {"resource": {"resourceType": "Binary", "contentType": "application/json-patch+json", "data": ops},
             "request": {"method": "PATCH", "url": f"Patient/{pid}"}}
    assert tx(client, [entry]).status_code == 200
    assert body(client.get(f"/fhir/Patient/{pid}"))["gender"] == "female"


def test_delete_then_reference_removed_in_the_same_transaction(client):
    pid = created_id(post(client, {"resourceType": "Patient"}))
    oid = created_id(post(client, {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": {"reference": f"Patient/{pid}"}}))
    entries = [{"request": {"method": "DELETE", "url": f"Patient/{pid}"}},
               {"resource": {"resourceType": "Observation", "id": oid, "status": "final", "code": {"text": "x"}}, "request": {"method": "PUT", "url": f"Observation/{oid}"}}]
    assert tx(client, entries).status_code == 200
    still_used = created_id(post(client, {"resourceType": "Patient"}))
    created_id(post(client, {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": {"reference": f"Patient/{still_used}"}}))
    assert tx(client, [{"request": {"method": "DELETE", "url": f"Patient/{still_used}"}}]).status_code == 409


FAULTS = [
    {"resourceType": "Observation", "status": "final"},  # invalid resource
    {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": {"reference": "Patient?identifier=urn:none|0"}},  # no match
    {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": {"reference": "Patient/missing"}},  # dangling
    {"resourceType": "Patient", "identifier": [{"system": "https://fhir.ehr-vn.org/sid/cccd", "value": "12345"}]},  # business rule
]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(size=st.integers(min_value=1, max_value=12), position=st.integers(min_value=0, max_value=12), fault=st.sampled_from(FAULTS))
def test_any_failing_entry_rolls_back_everything(client, store, size, position, fault):
    position = min(position, size)
    entries = [post_entry({"resourceType": "Patient", "name": [{"text": f"Người thứ {i}"}]}, f"urn:uuid:00000000-0000-4000-8000-{i:012d}") for i in range(size)]
    entries.insert(position, post_entry(fault))
    before = snapshot(store)
    response = tx(client, entries)
    assert 400 <= response.status_code < 500
    assert body(response)["issue"][0]["diagnostics"].startswith(f"entry {position}:")
    assert snapshot(store) == before


def test_malformed_entries_fail_the_whole_bundle(client, store):
    """Found by the malformed-input corpus (tests/reliability): each was accepted before."""
    patient = post_entry({"resourceType": "Patient"}, P)
    before = snapshot(store)
    cases = [
        ([patient, {"request": {"method": "GET", "url": "Patient?birthdate=notadate"}}], "Bundle.entry[1]"),
        ([{"request": {"method": "get", "url": "Patient"}}], "Bundle.entry[0].request.method"),
        ([{**patient, "fullUrl": 5}], "Bundle.entry[0].fullUrl"),
        ([{"resource": {"resourceType": "Patient", "id": "x1"}, "request": {"method": "PUT", "url": "Patient/x1/_history/1"}}],
         "Bundle.entry[0].request.url"),
    ]
    for entries, where in cases:
        response = tx(client, entries)
        assert response.status_code == 400, entries
        assert body(response)["issue"][0]["expression"][0].startswith(where), body(response)
    for kind in ("transaction", "batch"):
        raw = client.post("/fhir", data=json.dumps({"resourceType": "Bundle", "type": kind, "entry": {}}), headers=FHIR_JSON)
        assert raw.status_code == 400 and body(raw)["issue"][0]["expression"] == ["Bundle.entry"]
    assert snapshot(store) == before
