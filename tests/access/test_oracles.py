"""Finding 6 of issue 20: what a caller cannot see it cannot detect.

Hospital H3 holds patient A; hospital H2 has no right to A. H2's own AuditEvents, a 409 about its
own resource, and a clash on A's CCCD tell H2 nothing it could not see (the clash answers the same
as for a record H2 sees, as the design decides: see README "Access control"), while A's trail shows
H2's attempts."""

from __future__ import annotations

import json

import pytest

from access_helpers import OPS, bearer, register, token
from ehr.services import audit_events, resources
from ehr.services.policy import patient_context

CCCD_A = "079090000444"


@pytest.fixture
def scene(client, store):
    for org in ("h2", "h3"):
        resources.update(store, OPS, "Organization", f"org-{org}", {"resourceType": "Organization", "id": f"org-{org}", "name": f"H {org}"})
    h2, h3 = (bearer(token(client, register(store, f"oracle-{o}", f"org-{o}", ["system/*.cruds"]), "system/*.cruds")) for o in ("h2", "h3"))
    a = client.post("/fhir/Patient", headers=h3, json={"resourceType": "Patient", "name": [{"text": "Hồ Thị Kín"}],
                                                      "identifier": [{"system": store.systems.cccd, "value": CCCD_A}]}).get_json()["id"]
    return h2, h3, a


def test_audit_events_name_no_hidden_patient(client, store, scene):
    h2, h3, a = scene
    obs = client.post("/fhir/Observation", headers=h3, json={"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                                                           "subject": {"reference": f"Patient/{a}"}}).get_json()["id"]
    assert client.get(f"/fhir/Observation/{obs}", headers=h2).status_code == 404
    mine = client.get("/fhir/AuditEvent?_count=200", headers=h2)
    assert mine.status_code == 200 and a not in mine.get_data(as_text=True)
    assert any(f"Observation/{obs}" in json.dumps(e) for e in mine.get_json().get("entry", []))  # its own attempt is listed
    by_patient = client.get(f"/fhir/AuditEvent?patient={a}", headers=h2).get_json()
    assert by_patient.get("entry", []) == []
    # The patient sees who tried.
    theirs = audit_events.search(store, patient_context("acct-a", a), {"patient": [a]}).events
    assert any(e["outcome"] != "0" and "oracle-h2" in json.dumps(e) for e in theirs)


def test_a_409_names_no_hidden_referrer(client, store, scene):
    h2, h3, a = scene
    practitioner = client.post("/fhir/Practitioner", headers=h2, json={"resourceType": "Practitioner", "name": [{"text": "BS Lan"}]}).get_json()["id"]
    obs = client.post("/fhir/Observation", headers=h3, json={
        "resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": {"reference": f"Patient/{a}"},
        "performer": [{"reference": f"Practitioner/{practitioner}"}]}).get_json()["id"]
    r = client.delete(f"/fhir/Practitioner/{practitioner}", headers=h2)
    assert r.status_code == 409
    assert obs not in r.get_data(as_text=True) and a not in r.get_data(as_text=True)


def test_a_cccd_clash_answers_alike_and_reaches_the_patients_trail(client, store, scene):
    h2, h3, a = scene
    doc = {"resourceType": "Patient", "name": [{"text": "Người khác"}], "identifier": [{"system": store.systems.cccd, "value": CCCD_A}]}
    hidden = client.post("/fhir/Patient", headers=h2, json=doc)
    seen = client.post("/fhir/Patient", headers=h3, json=doc)  # H3 sees A: the same answer
    assert hidden.status_code == seen.status_code == 409
    assert hidden.get_json()["issue"] == seen.get_json()["issue"]
    assert a not in hidden.get_data(as_text=True)
    theirs = audit_events.search(store, patient_context("acct-a", a), {"patient": [a]}).events
    assert any("oracle-h2" in json.dumps(e) and e["outcome"] != "0" for e in theirs)
    check = client.post("/fhir/Patient/$validate", headers=h2, json={"resourceType": "Parameters", "parameter": [
        {"name": "resource", "resource": doc}, {"name": "mode", "valueCode": "create"}]})
    assert a not in check.get_data(as_text=True)
