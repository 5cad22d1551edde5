"""Every shared Synthea bundle posted as a transaction: each resource reads back as sent (ids and
references rewritten, meta aside), and $everything per patient holds every resource."""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from ehr.fhir import references
from fhir_helpers import FHIR_JSON, body, dumps

DATA = Path(__file__).resolve().parent.parent / "data" / "fhir-r4" / "synthea"
FILES = sorted(p for p in DATA.glob("*.json") if p.name != "MANIFEST.json")
MANIFEST = {m["file"]: m for m in json.loads((DATA / "MANIFEST.json").read_text())}


def _everything(client, patient_id):
    out, url = {}, f"/fhir/Patient/{patient_id}/$everything?_count=1000"
    while url:
        doc = body(client.get(url))
        out.update({(e["resource"]["resourceType"], e["resource"]["id"]): e["resource"] for e in doc.get("entry", [])})
        nxt = [link["url"] for link in doc["link"] if link["relation"] == "next"]
        url = (lambda p: f"{p.path}?{p.query}")(urlsplit(nxt[0])) if nxt else None
    return out


@pytest.mark.slow
@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name[:24])
def test_synthea_bundle_as_transaction(client, path):
    sent = json.loads(path.read_text(), parse_float=Decimal)
    response = client.post("/fhir", data=dumps(sent), headers={**FHIR_JSON, "Prefer": "return=minimal"})
    assert response.status_code == 200, response.data[:500]
    results = body(response)["entry"]
    assert all(r["response"]["status"] == "201 Created" for r in results)
    mapping = {e["fullUrl"]: r["response"]["location"].split("/fhir/")[1].split("/_history")[0] for e, r in zip(sent["entry"], results)}
    patient_id = next(v.split("/")[1] for v in mapping.values() if v.startswith("Patient/"))
    stored = _everything(client, patient_id)
    assert Counter(t for t, _ in stored) == Counter(MANIFEST[path.name]["resource_counts"])
    for entry in sent["entry"]:
        resource = entry["resource"]
        references.rewrite(resource, mapping)
        rtype, rid = mapping[entry["fullUrl"]].split("/")
        got = stored[(rtype, rid)]
        assert {k: v for k, v in got.items() if k not in ("id", "meta")} == {k: v for k, v in resource.items() if k not in ("id", "meta")}
