"""Instance, type and system history: newest first, paged with opaque links."""

from __future__ import annotations

from urllib.parse import urlsplit

from fhir_helpers import body, created_id, patient, post, put


def test_instance_history_newest_first_with_delete_entry(client):
    rid = created_id(post(client, patient()))
    put(client, patient("Lê Thị Hoa", id=rid))
    client.delete(f"/fhir/Patient/{rid}")
    doc = body(client.get(f"/fhir/Patient/{rid}/_history"))
    assert doc["type"] == "history"
    methods = [e["request"]["method"] for e in doc["entry"]]
    assert methods == ["DELETE", "PUT", "POST"]
    assert [e["response"]["etag"] for e in doc["entry"]] == ['W/"3"', 'W/"2"', 'W/"1"']
    assert "resource" not in doc["entry"][0]
    assert doc["entry"][1]["resource"]["name"][0]["text"] == "Lê Thị Hoa"


def test_history_of_unknown_resource_is_404(client):
    assert client.get("/fhir/Patient/nobody/_history").status_code == 404


def test_type_history_pages_follow_next_links(client):
    ids = [created_id(post(client, patient(f"Phạm Văn {n}"))) for n in ("An", "Bình", "Chi", "Dũng", "Hà")]
    seen = []
    url = "/fhir/Patient/_history?_count=2"
    pages = 0
    while url:
        doc = body(client.get(url))
        seen += [e["resource"]["id"] for e in doc["entry"]]
        nxt = [link["url"] for link in doc["link"] if link["relation"] == "next"]
        url = urlsplit(nxt[0])._replace(scheme="", netloc="").geturl() if nxt else None
        pages += 1
    assert pages == 3
    assert seen == list(reversed(ids))


def test_system_history_includes_every_type(client):
    post(client, patient())
    post(client, {"resourceType": "Organization", "name": "Phòng khám An Bình"})
    types = [e["resource"]["resourceType"] for e in body(client.get("/fhir/_history"))["entry"]]
    assert types == ["Organization", "Patient"]


def test_history_since_filters_and_bad_since_is_400(client):
    post(client, patient())
    assert body(client.get("/fhir/Patient/_history?_since=2999-01-01T00:00:00Z")).get("entry") is None
    assert len(body(client.get("/fhir/Patient/_history?_since=2000-01-01T00:00:00%2B07:00"))["entry"]) == 1
    assert client.get("/fhir/Patient/_history?_since=yesterday").status_code == 400


def test_tampered_page_token_is_400(client):
    assert client.get("/fhir/Patient/_history?_page=gAAAAABnot-a-token").status_code == 400
