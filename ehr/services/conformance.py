"""Publish the conformance artifacts under `fhir/` (NamingSystems, OperationDefinitions,
SearchParameters) as resources of this server, so clients read them at /fhir/NamingSystem etc.

Idempotent: a resource is written only when its content changed. NamingSystem URIs are rewritten
to the configured identifier base (`EHR_IDENTIFIER_BASE`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ehr.store.access import INTERNAL
from ehr.fhir import jsonio
from ehr.identity.systems import DEFAULT_BASE
from ehr.services import resources
from ehr.services.context import AccessContext
from ehr.store import repository
from ehr.store.runtime import Store

ARTIFACTS = Path(__file__).resolve().parents[2] / "fhir"
FILES = ("naming-systems.json", "operation-definitions.json", "search-parameters.json")


def artifacts(store: Store) -> list[dict[str, Any]]:
    out = []
    for name in FILES:
        bundle = json.loads((ARTIFACTS / name).read_text("utf-8"))
        for entry in bundle["entry"]:
            resource = entry["resource"]
            if resource["resourceType"] == "NamingSystem" and store.systems.base != DEFAULT_BASE:
                text = json.dumps(resource).replace(DEFAULT_BASE, store.systems.base.rstrip("/"))
                resource = json.loads(text)
            out.append(resource)
    return out


def _same(stored: bytes, wanted: dict[str, Any]) -> bool:
    current = {k: v for k, v in jsonio.loads_stored(stored).items() if k != "meta"}
    return current == json.loads(jsonio.canonical({k: v for k, v in wanted.items() if k != "meta"}))


def sync(store: Store) -> tuple[int, int]:
    """(written, unchanged)."""
    ctx = AccessContext.server()
    written = unchanged = 0
    for resource in artifacts(store):
        with store.reading(INTERNAL) as uow:
            current = repository.read_current(uow, store.keys, resource["resourceType"], resource["id"])
        if current is not None and not current.deleted and current.body is not None and _same(current.body, resource):
            unchanged += 1
            continue
        resources.update(store, ctx, resource["resourceType"], resource["id"], json.loads(json.dumps(resource)))
        written += 1
    return written, unchanged
