"""String search: starts-with, case- and Vietnamese-accent-insensitive, on blind prefixes."""

from __future__ import annotations

from search_helpers import ids, make


def person(name: str, **extra):
    family, *given = name.split()
    return {"resourceType": "Patient", "name": [{"text": name, "family": family, "given": given}], **extra}


def test_vietnamese_names_with_and_without_diacritics(client):
    nguyen = make(client, person("Nguyễn Thị Ánh"))
    ngo = make(client, person("Ngô Văn Đức"))
    tran = make(client, person("Trần Đình Nguyên"))
    assert ids(client, "/fhir/Patient", name="Nguyen") == {nguyen, tran}  # Trần's given name is Nguyên
    assert ids(client, "/fhir/Patient", name="nguyễn") == {nguyen, tran}
    assert ids(client, "/fhir/Patient", name="NGUYEN THI") == {nguyen}
    assert ids(client, "/fhir/Patient", name="ng") == {nguyen, ngo, tran}
    assert ids(client, "/fhir/Patient", name="Nguyen,Tran") == {nguyen, tran}
    assert ids(client, "/fhir/Patient", given="Duc") == {ngo}
    assert ids(client, "/fhir/Patient", given="đức") == {ngo}
    assert ids(client, "/fhir/Patient", family="Tran") == {tran}
    assert ids(client, "/fhir/Patient", family="Nguyen") == {nguyen}  # "Nguyên" is a given name of Trần
    assert ids(client, "/fhir/Patient", given="Nguyen") == {tran}
    assert ids(client, "/fhir/Patient", name="Anh") == {nguyen}  # given name Ánh


def test_exact_keeps_case_and_accents(client):
    a = make(client, person("Lê Thị Hoa"))
    assert ids(client, "/fhir/Patient", **{"name:exact": "Lê Thị Hoa"}) == {a}
    assert ids(client, "/fhir/Patient", **{"family:exact": "Lê"}) == {a}
    assert ids(client, "/fhir/Patient", **{"family:exact": "Le"}) == set()
    assert ids(client, "/fhir/Patient", **{"family:exact": "lê"}) == set()


def test_contains_is_refused_with_a_reason(client):
    response = client.get("/fhir/Patient?name:contains=van")
    assert response.status_code == 400
    assert b"contains" in response.data and b"privacy" in response.data


def test_address_parts(client):
    a = make(client, {"resourceType": "Patient", "address": [{"line": ["Số 5 đường Lê Lợi"], "city": "Phường Bến Thành", "state": "Thành phố Hồ Chí Minh"}]})
    assert ids(client, "/fhir/Patient", address="Phuong Ben") == {a}
    assert ids(client, "/fhir/Patient", address="thanh pho ho chi") == {a}
    assert ids(client, "/fhir/Patient", address="so 5") == {a}
    assert ids(client, "/fhir/Patient", address="Le Loi") == set()  # starts-with, not contains


def test_organization_and_practitioner_names(client):
    org = make(client, {"resourceType": "Organization", "name": "Bệnh viện Bạch Mai", "alias": ["BV Bach Mai"]})
    assert ids(client, "/fhir/Organization", name="benh vien bach") == {org}
    assert ids(client, "/fhir/Organization", name="bv") == {org}
