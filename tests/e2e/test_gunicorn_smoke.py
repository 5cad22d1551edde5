"""The real server: gunicorn with several workers on a loopback port."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e
CCCD = "036185000111"


def test_create_read_search_over_http(gunicorn):
    with gunicorn.client() as http:
        created = http.post("/fhir/Patient", json={"resourceType": "Patient", "name": [{"text": "Đỗ Văn Gunicorn"}],
                                                   "identifier": [{"system": "urn:test", "value": CCCD}]})
        assert created.status_code == 201
        rid = created.json()["id"]
        read = http.get(f"/fhir/Patient/{rid}")
        assert read.status_code == 200 and read.headers["etag"] == 'W/"1"'
        assert read.headers["cache-control"] == "no-store"
        found = http.get("/fhir/Patient", params={"identifier": CCCD}).json()
        assert [e["resource"]["id"] for e in found["entry"]] == [rid]
        assert http.get("/fhir/metadata").json()["fhirVersion"] == "4.0.1"
        assert http.get("/fhir/nothing/here/at/all").status_code == 404
    log = gunicorn.log.read_text()
    assert '"GET /fhir/Patient"' in log  # access log written, path without the query string
    assert CCCD not in log and "Gunicorn" not in log.replace("gunicorn", "")
