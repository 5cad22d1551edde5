"""Result control: includes, sorting, paging, summaries, totals, strict/lenient handling."""

from __future__ import annotations

from urllib.parse import urlsplit

from fhir_helpers import body
from search_helpers import make, obs, search

CCCD = "079190123456"


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def _follow(client, first: str) -> tuple[list[str], list[str]]:
    """All matched ids across pages, and every link URL seen."""
    seen, urls, url = [], [], first
    while url:
        doc = body(client.get(url))
        seen += [e["resource"]["id"] for e in doc.get("entry", []) if e["search"]["mode"] == "match"]
        links = {link["relation"]: link["url"] for link in doc["link"]}
        urls += list(links.values())
        url = _path(links["next"]) if "next" in links else None
    return seen, urls


def test_include_and_revinclude(client):
    p = make(client, {"resourceType": "Patient", "name": [{"text": "Phan Văn Include"}]})
    enc = make(client, {"resourceType": "Encounter", "status": "finished", "class": {"code": "AMB"}, "subject": {"reference": f"Patient/{p}"}})
    o = make(client, obs(p, encounter={"reference": f"Encounter/{enc}"}))
    doc = search(client, "/fhir/Observation", _include="Observation:patient")
    modes = {(e["resource"]["resourceType"], e["search"]["mode"]) for e in doc["entry"]}
    assert modes == {("Observation", "match"), ("Patient", "include")}
    doc = search(client, "/fhir/Patient", _revinclude="Observation:patient")
    assert {e["resource"]["id"] for e in doc["entry"] if e["search"]["mode"] == "include"} == {o}
    doc = client.get(f"/fhir/Observation?_include=Observation:encounter&_include:iterate=Encounter:patient").get_json()
    assert {e["resource"]["resourceType"] for e in doc["entry"]} == {"Observation", "Encounter", "Patient"}
    doc = search(client, "/fhir/Observation", _include="Observation:*")
    assert {e["resource"]["resourceType"] for e in doc["entry"]} == {"Observation", "Encounter", "Patient"}
    assert client.get("/fhir/Observation?_include=Observation:code").status_code == 400


def test_sort_on_several_keys_with_paging(client):
    made = []
    for i, (status, when) in enumerate([("final", "2021"), ("amended", "2020"), ("final", "2019"), ("amended", "2022"), ("final", "2020"), ("preliminary", "2020")]):
        made.append((status, when, make(client, obs(code=str(i), status=status, effectiveDateTime=when))))
    expected = [rid for status, when, rid in sorted(made, key=lambda m: (m[0], -int(m[1])))]
    order, _ = _follow(client, "/fhir/Observation?_sort=status,-date&_count=2")
    assert order == expected
    newest_first, _ = _follow(client, "/fhir/Observation?_sort=-_lastUpdated&_count=4")
    assert newest_first == [rid for _, _, rid in reversed(made)]
    assert client.get("/fhir/Patient?_sort=name").status_code == 400  # blind: no order kept
    assert client.get("/fhir/Patient?_sort=birthdate").status_code == 400


def test_paging_is_stable_while_data_arrives(client):
    first_wave = {make(client, obs(code="p")) for _ in range(7)}
    doc = body(client.get("/fhir/Observation?code=p&_count=3"))
    seen = [e["resource"]["id"] for e in doc["entry"]]
    next_url = _path(next(link["url"] for link in doc["link"] if link["relation"] == "next"))
    arrivals = {make(client, obs(code="p")) for _ in range(5)}  # new data between pages
    rest, _ = _follow(client, next_url)
    seen += rest
    assert len(seen) == len(set(seen))  # no repeats
    assert first_wave <= set(seen)  # nothing that existed was skipped
    assert set(seen) <= first_wave | arrivals


def test_links_never_carry_identifying_values(client):
    for i in range(3):
        make(client, {"resourceType": "Patient", "name": [{"text": f"Vũ Thị Liên {i}"}], "identifier": [{"system": "urn:cccd", "value": CCCD}]})
    for query in (f"identifier={CCCD}&_count=1", "name=Vu%20Thi&_count=1", "birthdate=ge1900&_count=1"):
        found, urls = _follow(client, f"/fhir/Patient?{query}")
        forbidden = (CCCD, "Vu%20Thi", "Vu Thi", "identifier=", "name=", "birthdate=")
        assert urls and not [u for u in urls for f in forbidden if f in u]
    found, _ = _follow(client, f"/fhir/Patient?identifier={CCCD}&_count=1")
    assert len(found) == 3


def test_post_search_keeps_the_number_out_of_the_url(client):
    a = make(client, {"resourceType": "Patient", "identifier": [{"system": "urn:cccd", "value": CCCD}]})
    response = client.post("/fhir/Patient/_search", data={"identifier": CCCD})
    assert response.status_code == 200 and [e["resource"]["id"] for e in body(response)["entry"]] == [a]
    assert client.post("/fhir/Patient/_search", json={"identifier": CCCD}).status_code == 415


def test_summary_elements_and_total(client):
    p = make(client, {"resourceType": "Patient", "name": [{"text": "Đỗ Văn Tóm"}], "gender": "male",
                      "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">Đỗ Văn Tóm</div>'},
                      "maritalStatus": {"text": "married"}})
    make(client, {"resourceType": "Patient"})
    counted = search(client, "/fhir/Patient", _summary="count")
    assert counted["total"] == 2 and "entry" not in counted
    doc = search(client, "/fhir/Patient", _id=p, _summary="true")["entry"][0]["resource"]
    assert "maritalStatus" not in doc and "text" not in doc and doc["gender"] == "male"
    assert doc["meta"]["tag"][0]["code"] == "SUBSETTED"
    doc = search(client, "/fhir/Patient", _id=p, _summary="data")["entry"][0]["resource"]
    assert "text" not in doc and "maritalStatus" in doc
    doc = search(client, "/fhir/Patient", _id=p, _elements="gender")["entry"][0]["resource"]
    assert set(doc) == {"resourceType", "id", "meta", "gender"}
    assert search(client, "/fhir/Patient", _count="1", _total="accurate")["total"] == 2
    assert "total" not in search(client, "/fhir/Patient", _count="1")
    assert search(client, "/fhir/Patient")["total"] == 2  # one page: known exactly
    assert "total" not in search(client, "/fhir/Patient", _total="none")


def test_unknown_parameters_lenient_or_strict(client):
    make(client, {"resourceType": "Patient"})
    doc = search(client, "/fhir/Patient", shoesize="42")
    outcome = [e for e in doc["entry"] if e["search"]["mode"] == "outcome"]
    assert outcome and "shoesize" in outcome[0]["resource"]["issue"][0]["diagnostics"]
    strict = client.get("/fhir/Patient?shoesize=42", headers={"Prefer": "handling=strict"})
    assert strict.status_code == 400
    assert client.get("/fhir/Patient?name:fuzzy=x").status_code == 400
    assert client.get("/fhir/Patient?_count=many").status_code == 400
    assert client.get("/fhir/Patient?_page=forged").status_code == 400


def test_previous_links_walk_back_page_by_page(client):
    for i in range(7):
        make(client, obs(code=f"prev{i}", effectiveDateTime=f"20{10 + i}"))
    forward, url, pages = [], "/fhir/Observation?_sort=date&_count=2", []
    while url:
        doc = body(client.get(url))
        links = {link["relation"]: link["url"] for link in doc["link"]}
        pages.append(([e["resource"]["id"] for e in doc["entry"]], links))
        url = _path(links["next"]) if "next" in links else None
    assert "previous" not in pages[0][1] and all("previous" in links for _, links in pages[1:])
    back = []
    url = _path(pages[-1][1]["previous"])
    while url:
        doc = body(client.get(url))
        back.append([e["resource"]["id"] for e in doc["entry"]])
        links = {link["relation"]: link["url"] for link in doc["link"]}
        url = _path(links["previous"]) if "previous" in links else None
    assert back == [ids for ids, _ in reversed(pages[:-1])]


def test_revinclude_iterate_follows_the_chain(client):
    p = make(client, {"resourceType": "Patient", "name": [{"text": "Vũ Văn Lặp"}]})
    enc = make(client, {"resourceType": "Encounter", "status": "finished", "class": {"code": "AMB"}, "subject": {"reference": f"Patient/{p}"}})
    o = make(client, obs(p, encounter={"reference": f"Encounter/{enc}"}))
    doc = client.get(f"/fhir/Patient?_id={p}&_revinclude=Encounter:subject&_revinclude:iterate=Observation:encounter").get_json()
    included = {(e["resource"]["resourceType"], e["resource"]["id"]) for e in doc["entry"] if e["search"]["mode"] == "include"}
    assert included == {("Encounter", enc), ("Observation", o)}


def test_the_capability_statement_never_claims_contains(client):
    rest = client.get("/fhir/metadata").get_json()["rest"][0]
    documented = [p for r in rest["resource"] for p in r.get("searchParam", []) if "Modifiers:" in str(p.get("documentation", ""))]
    assert len(documented) > 50
    for resource in rest["resource"]:
        for param in resource.get("searchParam", []):
            claimed = str(param.get("documentation", "")).partition("Modifiers:")[2]
            assert "contains" not in claimed, (resource["type"], param["name"])
