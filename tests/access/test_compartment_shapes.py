"""Finding 3 of issue 20: a resource about a patient that names them in no plain `Patient/<id>`
subject is still in their record. Hospital H3 writes each shape about patient A; hospital H2 (no
consent) cannot read, search or export it; hospital H1 (A's consent) can, which shows the shape
landed in A's record rather than nowhere."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import pytest

from access_helpers import OPS, bearer, register, token
from ehr.services import export, resources
from ehr.services.policy import patient_context
from ehr.store import repository
from ehr.store.access import INTERNAL
from world import consent

CCCD_A = "079090000333"


def _canary() -> str:
    return f"CANARY{uuid.uuid4().hex[:10].upper()}"


def shapes(cccd_system: str, a: str, obs: str) -> dict[str, Any]:
    """name -> a function of the canary giving the resource (A's id `a`, A's Observation `obs`)."""
    ident = {"system": cccd_system, "value": CCCD_A}
    return {
        "identifier subject": lambda c: {"resourceType": "Observation", "status": "final", "code": {"text": "HIV test"},
                                         "subject": {"identifier": ident}, "valueString": c},
        "document Bundle": lambda c: {"resourceType": "Bundle", "type": "collection", "entry": [
            {"fullUrl": "urn:uuid:5c7b4f0e-2b7c-4a55-9e57-1f0f1f7a0001", "resource": {"resourceType": "Patient", "identifier": [ident]}},
            {"fullUrl": "urn:uuid:5c7b4f0e-2b7c-4a55-9e57-1f0f1f7a0002",
             "resource": {"resourceType": "Observation", "status": "final", "code": {"text": "note"}, "valueString": c}}]},
        "Binary securityContext": lambda c: {"resourceType": "Binary", "contentType": "text/plain",
                                             "securityContext": {"reference": f"Observation/{obs}"}, "data": base64.b64encode(c.encode()).decode()},
        "Group member": lambda c: {"resourceType": "Group", "type": "person", "actual": True, "name": c,
                                   "member": [{"entity": {"reference": f"Patient/{a}"}}]},
        "Provenance target": lambda c: {"resourceType": "Provenance", "target": [{"reference": f"Observation/{obs}"}],
                                        "recorded": "2026-11-30T03:00:00Z", "reason": [{"text": c}],
                                        "agent": [{"who": {"display": "H3"}}]},
        "Observation focus": lambda c: {"resourceType": "Observation", "status": "final", "code": {"text": "note"},
                                        "focus": [{"reference": f"Patient/{a}"}], "valueString": c},
        "contained Patient": lambda c: {"resourceType": "Observation", "status": "final", "code": {"text": "note"},
                                        "contained": [{"resourceType": "Patient", "id": "p1", "identifier": [ident]}],
                                        "subject": {"reference": "#p1"}, "valueString": c},
        "Contract": lambda c: {"resourceType": "Contract", "status": "executed", "title": c, "subject": [{"reference": f"Patient/{a}"}]},
    }


@pytest.fixture
def scene(client, store):
    for org in ("h1", "h2", "h3"):
        resources.update(store, OPS, "Organization", f"org-{org}", {"resourceType": "Organization", "id": f"org-{org}", "name": f"H {org}"})
    tokens = {org: token(client, register(store, f"shape-{org}", f"org-{org}", ["system/*.cruds"]), "system/*.cruds") for org in ("h1", "h2", "h3")}
    h3 = bearer(tokens["h3"])
    a = client.post("/fhir/Patient", headers=h3, json={"resourceType": "Patient", "name": [{"text": "Lê Thị Hình"}],
                                                      "identifier": [{"system": store.systems.cccd, "value": CCCD_A}]}).get_json()["id"]
    obs = client.post("/fhir/Observation", headers=h3, json={"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                                                           "subject": {"reference": f"Patient/{a}"}}).get_json()["id"]
    resources.create(store, patient_context("acct-a", a), consent(a, ["org-h1"]))
    written = {}
    for name, build in shapes(store.systems.cccd, a, obs).items():
        canary = _canary()
        doc = build(canary)
        r = client.post(f"/fhir/{doc['resourceType']}", headers=h3, json=doc)
        assert r.status_code == 201, (name, r.get_json())
        written[name] = (doc["resourceType"], r.get_json()["id"], canary)
    return tokens, written, a


def _shows(data: bytes, canary: str) -> bool:
    """The canary as text, or as a Binary carries it (base64)."""
    return canary.encode() in data or base64.b64encode(canary.encode()) in data


def _export(client, store, app, headers) -> bytes:
    kick = client.get("/fhir/$export", headers={**headers, "Prefer": "respond-async"})
    assert kick.status_code == 202, kick.get_json()
    while export.run_pending(store, app.extensions["ehr.export"]):
        pass
    manifest = client.get(kick.headers["Content-Location"].replace("http://localhost", ""), headers=headers).get_json()
    return b"".join(client.get(item["url"].replace("http://localhost", ""), headers=headers).data for item in manifest["output"])


def test_every_shape_is_in_the_patients_record(app, client, store, scene):
    tokens, written, a = scene
    h1, h2, h3 = (bearer(tokens[o]) for o in ("h1", "h2", "h3"))
    leaks = []
    for name, (rtype, rid, canary) in written.items():
        with store.reading(INTERNAL) as uow:
            assert repository.current(uow, rtype, rid).compartment == a, name
        if client.get(f"/fhir/{rtype}/{rid}", headers=h2).status_code != 404:
            leaks.append(f"{name}: read")
        if _shows(client.get(f"/fhir/{rtype}?_id={rid}", headers=h2).data, canary):
            leaks.append(f"{name}: search")
        for who in (h1, h3):  # the consent holder and the writer read it
            r = client.get(f"/fhir/{rtype}/{rid}", headers=who)
            assert r.status_code == 200 and _shows(r.data, canary), name
    exported = _export(client, store, app, h2)
    leaks += [f"{name}: export" for name, (_, _, canary) in written.items() if _shows(exported, canary)]
    assert leaks == [], leaks
    assert len(written) == 8
