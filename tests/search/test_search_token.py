"""Token search: system|code, |code, code, system|, :not, :missing, :text, :of-type; blind tokens."""

from __future__ import annotations

from search_helpers import ids, make, obs

LOINC = "http://loinc.org"


def test_token_forms(client):
    a = make(client, obs(code="8867-4"))
    b = make(client, obs(code="8867-4", system="http://other.org"))
    c = make(client, {"resourceType": "Observation", "status": "final", "code": {"coding": [{"code": "8867-4"}]}})
    d = make(client, obs(code="8310-5"))
    assert ids(client, "/fhir/Observation", code=f"{LOINC}|8867-4") == {a}
    assert ids(client, "/fhir/Observation", code="8867-4") == {a, b, c}
    assert ids(client, "/fhir/Observation", code="|8867-4") == {c}
    assert ids(client, "/fhir/Observation", code=f"{LOINC}|") == {a, d}
    assert ids(client, "/fhir/Observation", code="8867-4,8310-5") == {a, b, c, d}  # comma = OR
    assert ids(client, "/fhir/Observation", **{"code:not": f"{LOINC}|8867-4"}) == {b, c, d}


def test_repeated_parameter_is_and(client):
    a = make(client, obs(code="1", category=[{"coding": [{"code": "vital-signs"}]}]))
    make(client, obs(code="1"))
    assert ids(client, "/fhir/Observation?code=1&category=vital-signs") == {a}


def test_missing_modifier(client):
    with_cat = make(client, obs(category=[{"coding": [{"code": "laboratory"}]}]))
    without = make(client, obs())
    assert ids(client, "/fhir/Observation", **{"category:missing": "true"}) == {without}
    assert ids(client, "/fhir/Observation", **{"category:missing": "false"}) == {with_cat}
    assert client.get("/fhir/Observation?category:missing=maybe").status_code == 400


def test_text_modifier_matches_words_without_accents(client):
    a = make(client, {"resourceType": "Condition", "subject": {"reference": "Patient/" + make(client, {"resourceType": "Patient"})},
                      "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "I10", "display": "Tăng huyết áp vô căn"}]}})
    assert ids(client, "/fhir/Condition", **{"code:text": "huyet ap"}) == {a}
    assert ids(client, "/fhir/Condition", **{"code:text": "tieu duong"}) == set()


def test_identifier_is_blind_and_supports_of_type(client, store):
    mr = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]}
    p1 = make(client, {"resourceType": "Patient", "identifier": [{"system": "urn:cccd", "value": "079188000001", "type": mr}]})
    p2 = make(client, {"resourceType": "Patient", "identifier": [{"system": "urn:other", "value": "079188000001"}]})
    assert ids(client, "/fhir/Patient", identifier="079188000001") == {p1, p2}
    assert ids(client, "/fhir/Patient", identifier="urn:cccd|079188000001") == {p1}
    assert ids(client, "/fhir/Patient", identifier=" 0791 8800 0001 ") == {p1, p2}  # normalised
    of_type = "http://terminology.hl7.org/CodeSystem/v2-0203|MR|079188000001"
    assert ids(client, "/fhir/Patient", **{"identifier:of-type": of_type}) == {p1}
    from sqlalchemy import text

    with store.engine.connect() as conn:
        stored = [row[0] for row in conn.execute(text("SELECT code FROM idx_token WHERE param = 'identifier'"))]
    assert stored and all(code is None for code in stored)  # only keyed hashes, never the number


def test_gender_and_phone_are_blind_tokens(client):
    f = make(client, {"resourceType": "Patient", "gender": "female", "telecom": [{"system": "phone", "value": "0912 345 678"}]})
    m = make(client, {"resourceType": "Patient", "gender": "male", "telecom": [{"system": "email", "value": "a@b.vn"}]})
    assert ids(client, "/fhir/Patient", gender="female") == {f}
    assert ids(client, "/fhir/Patient", phone="0912345678") == {f}
    assert ids(client, "/fhir/Patient", email="A@B.VN") == {m}
    assert ids(client, "/fhir/Patient", **{"gender:not": "female"}) == {m}


def test_boolean_and_code_tokens(client):
    active = make(client, {"resourceType": "Patient", "active": True})
    make(client, {"resourceType": "Patient", "active": False})
    assert ids(client, "/fhir/Patient", active="true") == {active}
    final = make(client, obs())
    make(client, obs(status="preliminary"))
    assert ids(client, "/fhir/Observation", status="final") == {final}
