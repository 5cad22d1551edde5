"""Consent: proof required on write, honoured on the next request after a change, deny wins."""

from __future__ import annotations

import json

import pytest

from access_helpers import OPS, bearer, register, token
from ehr.fhir.outcomes import FhirError
from ehr.services import resources
from ehr.services.policy import patient_context
from fhir_helpers import patient
from world import consent


@pytest.fixture
def setup(client, store):
    for org in ("org-h1", "org-h2"):
        resources.update(store, OPS, "Organization", org, {"resourceType": "Organization", "id": org, "name": org})
    registrar = register(store, "registrar", "org-h2", ["system/*.cruds"])
    reader = register(store, "reader", "org-h1", ["system/*.rs"])
    pid = client.post("/fhir/Patient", headers=bearer(token(client, registrar, "system/*.cruds")), json=patient("Lê Văn Canary")).get_json()["id"]
    return pid, patient_context("acct-p", pid), token(client, reader)


@pytest.mark.parametrize("element", ["dateTime", "performer", "policy", "provision.type", "provision.purpose"])
def test_consent_without_its_proof_is_refused(store, setup, element):
    pid, ctx, _ = setup
    doc = consent(pid, ["org-h1"])
    parent, _, leaf = element.rpartition(".")
    del (doc[parent] if parent else doc)[leaf]
    with pytest.raises(FhirError) as caught:
        resources.create(store, ctx, doc)
    assert caught.value.status == 422 and caught.value.issues[0].expression == (f"Consent.{element}",)


def test_revocation_takes_effect_on_the_next_request(client, store, setup):
    pid, ctx, value = setup
    path = f"/fhir/Patient/{pid}"
    assert client.get(path, headers=bearer(value)).status_code == 404  # no consent yet
    written = resources.create(store, ctx, consent(pid, ["org-h1"]))
    assert client.get(path, headers=bearer(value)).status_code == 200
    doc = json.loads(resources.read(store, ctx, "Consent", written.version.logical_id).body)
    doc["status"] = "inactive"
    resources.update(store, ctx, "Consent", doc["id"], doc)
    assert client.get(path, headers=bearer(value)).status_code == 404


def test_a_deny_consent_outweighs_a_permit(client, store, setup):
    pid, ctx, value = setup
    resources.create(store, ctx, consent(pid, []))  # permit: every organization
    assert client.get(f"/fhir/Patient/{pid}", headers=bearer(value)).status_code == 200
    objection = consent(pid, ["org-h1"])
    objection["provision"]["type"] = "deny"
    resources.create(store, ctx, objection)
    assert client.get(f"/fhir/Patient/{pid}", headers=bearer(value)).status_code == 404


def test_consent_for_another_purpose_does_not_open_the_record(client, store, setup):
    pid, ctx, value = setup
    research = consent(pid, ["org-h1"])
    research["provision"]["purpose"][0]["code"] = "HRESCH"
    resources.create(store, ctx, research)
    assert client.get(f"/fhir/Patient/{pid}", headers=bearer(value)).status_code == 404


def test_systems_cannot_write_consent(client, store, setup):
    pid, _, _ = setup
    writer = register(store, "writer", "org-h2", ["system/*.cruds"])
    response = client.post("/fhir/Consent", headers=bearer(token(client, writer, "system/*.cruds")), json=consent(pid, ["org-h2"]))
    assert response.status_code == 403
