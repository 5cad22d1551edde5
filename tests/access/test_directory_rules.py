"""Finding 4 of issue 20: shared data is directory data, changed only by its owner; names and
facility codes by operators; facility codes unique; conformance artifacts by operators only."""

from __future__ import annotations

from access_helpers import OPS, bearer, register, token
from ehr.fhir.outcomes import FhirError
from ehr.services import directory, resources
from ehr.services.policy import patient_context

import pytest


def _org(store, oid: str, name: str, code: str | None = None) -> dict:
    doc = {"resourceType": "Organization", "id": oid, "name": name}
    if code:
        doc["identifier"] = [{"system": store.systems.facility, "value": code}]
    return doc


def test_facility_codes_are_unique_and_an_operators(client, store):
    resources.update(store, OPS, "Organization", "org-x", _org(store, "org-x", "Bệnh viện Xanh", "01009"))
    with pytest.raises(FhirError) as clash:
        resources.update(store, OPS, "Organization", "org-y", _org(store, "org-y", "Bệnh viện Vàng", "01009"))
    assert clash.value.status == 409
    h = bearer(token(client, register(store, "dir-h", "org-x", ["system/*.cruds"]), "system/*.cruds"))
    assert client.post("/fhir/Organization", headers=h, json={"resourceType": "Organization", "name": "Phòng xét nghiệm đối tác"}).status_code == 201
    coded = client.post("/fhir/Organization", headers=h, json={**_org(store, "x", "Bệnh viện Xanh 2", "01010")})
    assert coded.status_code == 403 and "Organization.identifier" in coded.get_data(as_text=True)
    own = client.get("/fhir/Organization/org-x", headers=h).get_json()
    assert client.put("/fhir/Organization/org-x", headers=h, json={**own, "telecom": [{"system": "phone", "value": "02838123456"}]}).status_code == 200
    assert client.put("/fhir/Organization/org-x", headers=h, json={**own, "name": "Bệnh viện Khác"}).status_code == 403
    location = client.post("/fhir/Location", headers=h, json={"resourceType": "Location", "name": "Khoa Nội"}).get_json()["id"]
    resources.update(store, OPS, "Organization", "org-z", _org(store, "org-z", "Bệnh viện Z"))
    other = bearer(token(client, register(store, "dir-z", "org-z", ["system/*.cruds"]), "system/*.cruds"))
    assert client.get(f"/fhir/Location/{location}", headers=other).status_code == 200  # directory data is read by all
    assert client.delete(f"/fhir/Location/{location}", headers=other).status_code == 403  # and changed by its owner only
    assert client.post("/fhir/SearchParameter", headers=other, json={
        "resourceType": "SearchParameter", "url": "https://example.org/sp", "name": "x", "status": "active", "description": "x",
        "code": "x", "base": ["Patient"], "type": "token", "expression": "Patient.id"}).status_code == 403


def test_the_sharing_directory_lists_registered_facilities_only(client, store):
    resources.update(store, OPS, "Organization", "org-real", _org(store, "org-real", "Bệnh viện Đa khoa Sông Hồng", "01011"))
    h = bearer(token(client, register(store, "dir-fake", "org-real", ["system/*.cruds"]), "system/*.cruds"))
    assert client.post("/fhir/Organization", headers=h, json={"resourceType": "Organization", "name": "Bệnh viện Đa khoa Sông Hồng"}).status_code == 201
    pid = resources.create(store, OPS, {"resourceType": "Patient", "name": [{"text": "Đinh Văn Tìm"}]}).version.logical_id
    found = directory.search_organizations(store, patient_context("acct-t", pid), "song hong")
    assert [(f.id, f.code) for f in found] == [("org-real", "01011")]
