"""Patient/$match ranking on near-duplicates, and Patient/$merge end to end."""

from __future__ import annotations

import json

from sqlalchemy import select

from ehr.identity.systems import IdentifierSystems
from ehr.store.schema import data_keys, resource_versions
from fhir_helpers import FHIR_JSON, body, created_id, post
from search_helpers import ids, obs

S = IdentifierSystems()


def person(name, born, number=None, gender="male"):
    doc = {"resourceType": "Patient", "name": [{"text": name}], "birthDate": born, "gender": gender}
    if number:
        doc["identifier"] = [{"system": S.cccd, "value": number}]
    return doc


def run_match(client, candidate, **options):
    params = [{"name": "resource", "resource": candidate}] + [
        {"name": k, "valueBoolean": v} if isinstance(v, bool) else {"name": k, "valueInteger": v} for k, v in options.items()
    ]
    response = client.post("/fhir/Patient/$match", data=json.dumps({"resourceType": "Parameters", "parameter": params}), headers=FHIR_JSON)
    assert response.status_code == 200, response.data
    return [(e["resource"]["id"], e["search"]["score"], e["search"]["extension"][0]["valueCode"]) for e in body(response)["entry"]]


def test_match_ranks_near_duplicates(client):
    same_cccd = created_id(post(client, person("Nguyễn Văn An", "1990-05-14", "001090012345")))
    no_accents = created_id(post(client, person("Nguyen Van An", "1990-05-14")))
    namesake = created_id(post(client, person("Nguyễn Văn An", "1975-01-01", "001075099999")))
    created_id(post(client, person("Lê Thị Khác", "1990-05-14", "001190088888", "female")))
    ranked = run_match(client, person("Nguyễn Văn An", "1990-05-14", "001090012345"))
    assert [r[0] for r in ranked] == [same_cccd, no_accents]  # the namesake with another CCCD is excluded
    assert ranked[0][2] == "certain" and ranked[1][2] == "probable" and ranked[0][1] > ranked[1][1]
    without_id = run_match(client, person("Nguyen Van An", "1990-05-14"))
    assert {r[0] for r in without_id[:2]} == {same_cccd, no_accents}
    assert [r for r in without_id if r[0] == namesake][0][2] == "possible"
    assert [r[0] for r in run_match(client, person("Nguyễn Văn An", "1990-05-14", "001090012345"), onlyCertainMatches=True)] == [same_cccd]


def test_match_count_limits_the_results(client):
    best = created_id(post(client, person("Phạm Thị Lan", "1985-07-07", "001185000123", "female")))
    for born in ("1985-07-07", "1985-01-01", "1960-01-01"):
        created_id(post(client, person("Pham Thi Lan", born, gender="female")))
    candidate = person("Phạm Thị Lan", "1985-07-07", "001185000123", "female")
    assert len(run_match(client, candidate)) == 4
    assert len(run_match(client, candidate, count=2)) == 2
    assert [r[0] for r in run_match(client, candidate, count=1)] == [best]


def test_match_refuses_a_non_patient(client):
    params = {"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": {"resourceType": "Organization", "name": "x"}}]}
    assert client.post("/fhir/Patient/$match", data=json.dumps(params), headers=FHIR_JSON).status_code == 400


def merge(client, source, target, preview=False):
    params = {"resourceType": "Parameters", "parameter": [
        {"name": "source-patient", "valueReference": {"reference": f"Patient/{source}"}},
        {"name": "target-patient", "valueReference": {"reference": f"Patient/{target}"}},
    ] + ([{"name": "preview", "valueBoolean": True}] if preview else [])}
    return client.post("/fhir/Patient/$merge", data=json.dumps(params), headers=FHIR_JSON)


def everything(client, pid):
    response = client.get(f"/fhir/Patient/{pid}/$everything?_count=100")
    assert response.status_code == 200, response.data
    return {(e["resource"]["resourceType"], e["resource"]["id"]) for e in body(response)["entry"]}


def test_merge_moves_everything_to_the_target(app, client, store):
    source = created_id(post(client, person("Trần Văn Trùng", "1980-01-01", "001080000111")))
    target = created_id(post(client, {"resourceType": "Patient", "name": [{"text": "Trần Văn Trùng"}], "birthDate": "1980-01-01",
                                      "identifier": [{"system": S.mrn("01001"), "value": "BN-7"}]}))
    moved = [created_id(post(client, obs(source, code=str(i)))) for i in range(3)]
    enc = created_id(post(client, {"resourceType": "Encounter", "status": "finished", "class": {"code": "AMB"}, "subject": {"reference": f"Patient/{source}"}}))
    assert "would move 4" in json.dumps(body(merge(client, source, target, preview=True)))
    response = merge(client, source, target)
    assert response.status_code == 200, response.data
    result = {p["name"]: p.get("resource") for p in body(response)["parameter"]}
    assert {"reference": f"Patient/{source}"} in [link["other"] for link in result["result"]["link"]]
    # Searches by the source's national ID reach the target, which now holds it.
    assert target in ids(client, "/fhir/Patient", identifier=f"{S.cccd}|001080000111")
    source_doc = body(client.get(f"/fhir/Patient/{source}"))
    assert source_doc["active"] is False and source_doc["link"][0]["type"] == "replaced-by"
    target_doc = body(client.get(f"/fhir/Patient/{target}"))
    assert {"other": {"reference": f"Patient/{source}"}, "type": "replaces"} in target_doc["link"]
    # References point at the target; the records left the source's compartment.
    assert ids(client, "/fhir/Observation", patient=target) == set(moved)
    assert ids(client, "/fhir/Observation", patient=source) == set()
    assert body(client.get(f"/fhir/Encounter/{enc}"))["subject"]["reference"] == f"Patient/{target}"
    with store.engine.connect() as conn:
        key_of = dict(conn.execute(select(data_keys.c.key_id, data_keys.c.compartment)).all())
        current = conn.execute(select(resource_versions.c.logical_id, resource_versions.c.key_id)
                               .where(resource_versions.c.logical_id.in_(moved + [enc]), resource_versions.c.version_id == 2)).all()
    assert {key_of[k] for _, k in current} == {target}
    assert ids(client, "/fhir/Provenance", target=f"Patient/{target}")
    # The source's key can now be destroyed without losing the moved records.
    shred = app.test_cli_runner().invoke(args=["ehr", "keys", "shred", source, "--legal-reason", "duplicate record merged", "--yes"])
    assert shred.exit_code == 0, shred.output
    assert all(client.get(f"/fhir/Observation/{o}").status_code == 200 for o in moved)
    assert client.get(f"/fhir/Patient/{target}").status_code == 200
    # The survivor's $everything holds the merged records.
    assert {("Observation", o) for o in moved} | {("Encounter", enc)} <= everything(client, target)
    assert merge(client, source, target).status_code in (404, 409, 410)


def test_merge_by_identifier_and_errors(client):
    a = created_id(post(client, person("Hồ Văn Một", "1970-02-02", "001070000001")))
    b = created_id(post(client, person("Hồ Văn Hai", "1970-02-02", "001070000002")))
    params = {"resourceType": "Parameters", "parameter": [
        {"name": "source-patient-identifier", "valueIdentifier": {"system": S.cccd, "value": "001070000001"}},
        {"name": "target-patient", "valueReference": {"reference": f"Patient/{b}"}}]}
    assert client.post("/fhir/Patient/$merge", data=json.dumps(params), headers=FHIR_JSON).status_code == 200
    assert merge(client, b, b).status_code == 422
    assert merge(client, a, "nobody").status_code == 404
