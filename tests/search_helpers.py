"""Helpers for search tests: create resources, run a search, list the matched ids."""

from __future__ import annotations

from typing import Any

from fhir_helpers import body, created_id, post


def make(client, resource: dict[str, Any]) -> str:
    return created_id(post(client, resource))


def ids(client, path: str, **query: Any) -> set[str]:
    response = client.get(path, query_string=query or None)
    assert response.status_code == 200, response.data[:400]
    return {e["resource"]["id"] for e in body(response).get("entry", []) if e["search"]["mode"] == "match"}


def search(client, path: str, **query: Any):
    response = client.get(path, query_string=query or None)
    assert response.status_code == 200, response.data[:400]
    return body(response)


def obs(patient: str | None = None, code: str = "8867-4", system: str = "http://loinc.org", **extra: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": "Observation", "status": "final", "code": {"coding": [{"system": system, "code": code}]}}
    if patient:
        resource["subject"] = {"reference": f"Patient/{patient}"}
    resource.update(extra)
    return resource
