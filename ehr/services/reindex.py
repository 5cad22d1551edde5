"""Rebuild the search index from the encrypted store (after a search parameter is added or
changed). Reads every live resource, recomputes its rows, replaces them; batch by batch."""

from __future__ import annotations

from typing import Callable

from ehr.services import policy
from ehr.store.access import INTERNAL
from ehr.fhir import jsonio, shape
from ehr.fhir import references as refs
from ehr.services import indexing
from ehr.services.context import AccessContext
from ehr.services.policy import authorize
from ehr.store import index, repository
from ehr.store.runtime import Store


def local_references(store: Store, doc: dict) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    out = []
    for _, ref in shape.walk(doc).references:
        value = ref.get("reference")
        if isinstance(value, str):
            parsed = refs.parse(value, store.base_urls)
            if parsed.kind == "local" and parsed.resource_type and parsed.logical_id:
                out.append((parsed.resource_type, parsed.logical_id))
    return out


def count_live(store: Store, resource_type: str | None) -> int:
    with store.reading(INTERNAL) as uow:
        return repository.count_live(uow, resource_type)


def rebuild(store: Store, ctx: AccessContext, resource_type: str | None = None, batch: int = 500,
            progress: Callable[[int], None] | None = None) -> int:
    authorize(ctx, "update", resource_type or "*")
    done = 0
    after: tuple[str, str] | None = None
    while True:
        with store.writing(policy.gate(ctx)) as uow:
            keys = repository.live_keys(uow, resource_type, after, batch)
            if not keys:
                break
            versions = repository.read_many(uow, store.keys, keys)
            for key in keys:
                version = versions.get(key)
                if version is None or version.body is None:
                    continue  # erased compartment: nothing to index
                doc = jsonio.loads_stored(version.body)
                current = repository.current(uow, *key)
                rows = indexing.rows_for(store, key[0], doc, local_references(store, doc) if key[0] != "Bundle" else [])
                index.replace(uow, key[0], key[1], current.compartment if current else None, rows, fresh=False)
            after = keys[-1]
        done += len(keys)
        if progress:
            progress(len(keys))
    return done
