"""Real data: every resource of every shared Synthea bundle is accepted; every invalid file that a
server should refuse is refused (see README "What validation does not detect")."""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from ehr.fhir import references
from fhir_helpers import FHIR_JSON, body, dumps, post

DATA = Path(__file__).resolve().parent.parent / "data" / "fhir-r4"
SYNTHEA = sorted(p for p in (DATA / "synthea").glob("*.json") if p.name != "MANIFEST.json")


def dependency_order(entries: list[dict]) -> list[dict]:
    """Entries ordered so that every urn:uuid target is created before its referrers."""
    by_url = {e["fullUrl"]: e for e in entries}
    done: set[str] = set()
    ordered: list[dict] = []

    def visit(entry: dict, stack: set[str]) -> None:
        url = entry["fullUrl"]
        if url in done or url in stack:
            return
        stack.add(url)
        for target in sorted(set(_urns(entry["resource"])) & by_url.keys()):
            visit(by_url[target], stack)
        done.add(url)
        ordered.append(entry)

    for entry in entries:
        visit(entry, set())
    return ordered


def _urns(node) -> list[str]:
    if isinstance(node, dict):
        found = [node["reference"]] if isinstance(node.get("reference"), str) else []
        return found + [u for v in node.values() for u in _urns(v)]
    if isinstance(node, list):
        return [u for v in node for u in _urns(v)]
    return []


def test_synthea_set_is_all_here():
    assert len(SYNTHEA) == 45


@pytest.mark.slow
@pytest.mark.parametrize("path", SYNTHEA[:45], ids=lambda p: p.name[:24])
def test_every_synthea_resource_is_accepted(client, path):
    bundle = json.loads(path.read_text(), parse_float=Decimal)
    manifest = {m["file"]: m for m in json.loads((DATA / "synthea" / "MANIFEST.json").read_text())}[path.name]
    mapping: dict[str, str] = {}
    created: Counter[str] = Counter()
    for entry in dependency_order(bundle["entry"]):
        resource = entry["resource"]
        references.rewrite(resource, mapping)
        response = post(client, resource)
        assert response.status_code == 201, (resource["resourceType"], response.data[:500])
        mapping[entry["fullUrl"]] = f"{resource['resourceType']}/{body(response)['id']}"
        created[resource["resourceType"]] += 1
    assert dict(created) == manifest["resource_counts"]


def refused_files() -> list[dict]:
    index = json.loads((DATA / "invalid" / "INDEX.json").read_text())
    return [e for e in index if e["expected_server_behaviour"].startswith("HTTP 400") and "if the server" not in e["expected_server_behaviour"]]


def test_the_refusal_list_covers_syntax_structure_datatype_and_ids():
    categories = Counter(e["category"] for e in refused_files())
    assert categories == {"json-syntax": 9, "structure": 7, "datatype": 3, "id": 4}


@pytest.mark.parametrize("entry", refused_files(), ids=lambda e: e["file"])
def test_invalid_file_is_refused(client, entry):
    raw = (DATA / "invalid" / entry["file"]).read_bytes()
    if entry["category"] == "id":  # ids are ignored on create; the rule bites on update
        doc = json.loads(raw)
        response = client.put(f"/fhir/{doc['resourceType']}/valid-url-id", data=raw, headers=FHIR_JSON)
    elif entry["category"] == "json-syntax":
        response = client.post("/fhir/Patient", data=raw, headers=FHIR_JSON)
    else:
        doc = json.loads(raw)
        if doc["resourceType"] == "Parameters":  # not a stored type: checked by $validate
            response = client.post("/fhir/Parameters/$validate", data=raw, headers=FHIR_JSON)
            assert response.status_code == 200 and body(response)["issue"][0]["severity"] == "error"
            return
        response = client.post(f"/fhir/{doc['resourceType']}", data=raw, headers=FHIR_JSON)
    assert response.status_code in (400, 422), response.data[:300]
    assert body(response)["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("name", ["xml-bad-entities.json", "bundle-duplicate-id.json", "attachment-with-wrong-size.json"])
def test_optional_detections_we_make(client, name):
    raw = (DATA / "invalid" / name).read_bytes().removeprefix(b"\xef\xbb\xbf")
    doc = json.loads(raw)
    response = client.post(f"/fhir/{doc['resourceType']}", data=dumps(doc), headers=FHIR_JSON)
    assert response.status_code == 400
