"""Reference search, chains (subject:Patient.identifier, patient.name) and _has."""

from __future__ import annotations

from search_helpers import ids, make, obs


def _patients(client):
    an = make(client, {"resourceType": "Patient", "name": [{"text": "Nguyễn Văn An", "family": "Nguyễn"}], "birthDate": "1990-05-14",
                       "identifier": [{"system": "urn:cccd", "value": "001090000111"}]})
    binh = make(client, {"resourceType": "Patient", "name": [{"text": "Trần Thị Bình", "family": "Trần"}], "birthDate": "1975",
                         "identifier": [{"system": "urn:cccd", "value": "001175000222"}]})
    return an, binh


def test_reference_forms(client):
    an, binh = _patients(client)
    o1, o2 = make(client, obs(an)), make(client, obs(binh))
    assert ids(client, "/fhir/Observation", patient=f"Patient/{an}") == {o1}
    assert ids(client, "/fhir/Observation", patient=an) == {o1}
    assert ids(client, "/fhir/Observation", subject=f"Patient/{binh}") == {o2}
    assert ids(client, "/fhir/Observation", **{"subject:Patient": an}) == {o1}
    assert ids(client, "/fhir/Observation", patient=f"{an},{binh}") == {o1, o2}
    assert client.get("/fhir/Observation?subject=Organization/x").status_code == 400
    assert client.get("/fhir/Observation?patient=not a ref").status_code == 400


def test_chains(client):
    an, binh = _patients(client)
    o1, o2 = make(client, obs(an)), make(client, obs(binh))
    assert ids(client, "/fhir/Observation", **{"subject:Patient.identifier": "urn:cccd|001090000111"}) == {o1}
    assert ids(client, "/fhir/Observation", **{"patient.name": "tran"}) == {o2}
    assert ids(client, "/fhir/Observation", **{"patient.birthdate": "lt1980"}) == {o2}
    enc = make(client, {"resourceType": "Encounter", "status": "finished", "class": {"code": "AMB"}, "subject": {"reference": f"Patient/{an}"}})
    c = make(client, {"resourceType": "Condition", "subject": {"reference": f"Patient/{an}"}, "encounter": {"reference": f"Encounter/{enc}"}})
    assert ids(client, "/fhir/Condition", **{"encounter.patient.name": "nguyen"}) == {c}
    assert client.get("/fhir/Observation?code.name=x").status_code == 400  # code is not a reference


def test_has_reverse_chain(client):
    an, binh = _patients(client)
    make(client, obs(an, code="2339-0"))
    make(client, obs(binh, code="8867-4"))
    assert ids(client, "/fhir/Patient", **{"_has:Observation:patient:code": "2339-0"}) == {an}
    assert ids(client, "/fhir/Patient", **{"_has:Observation:patient:code": "2339-0,8867-4"}) == {an, binh}
    assert client.get("/fhir/Patient?_has:Observation:code:code=1").status_code == 400


def test_reference_missing_and_any_type_targets(client):
    an, _ = _patients(client)
    with_enc = make(client, obs(an, encounter={"reference": "Encounter/" + make(client, {"resourceType": "Encounter", "status": "finished", "class": {"code": "AMB"}})}))
    without = make(client, obs(an))
    assert ids(client, "/fhir/Observation", **{"encounter:missing": "true"}) == {without}
    assert ids(client, "/fhir/Observation", **{"encounter:missing": "false"}) == {with_enc}
    prov = make(client, {"resourceType": "Provenance", "target": [{"reference": f"Observation/{without}"}], "recorded": "2026-01-01T00:00:00Z",
                         "agent": [{"who": {"reference": f"Patient/{an}"}}]})
    assert ids(client, "/fhir/Provenance", target=f"Observation/{without}") == {prov}
