"""The patient compartment of a resource being written, resolved against the store.

`ehr.fhir.compartment` collects what a resource says about its patient; this module looks up what
only the store knows: who holds a CCCD named by an identifier reference, and which compartment a
referenced resource is in. Lookups run in the writer's unit of work, so a resource written earlier
in the same transaction bundle counts.
"""

from __future__ import annotations

from typing import Any

from ehr.fhir import compartment as cdef
from ehr.identity import rules as id_rules
from ehr.services import indexing, policy
from ehr.store import index, repository
from ehr.store.runtime import Store
from ehr.store.uow import UnitOfWork


def _holder(uow: UnitOfWork, store: Store, identifier: dict[str, Any]) -> str | None:
    """The one active Patient holding the national ID of an identifier, or None."""
    if identifier.get("system") != store.systems.cccd or not isinstance(identifier.get("value"), str):
        return None
    try:
        number = id_rules.check_cccd(identifier["value"])
    except id_rules.IdentifierError:
        return None
    holders = index.token_holders(uow, "Patient", indexing.NATIONAL_ID, indexing.national_id_token(store, number))
    if len(holders) != 1 or not policy.patient_visible(uow, uow.access, holders[0]):
        # A number held by a patient the writer cannot see is treated like an unknown number, so
        # the answer does not tell whether the number is registered here.
        return None
    return holders[0]


def decide(
    uow: UnitOfWork, store: Store, resource_type: str, logical_id: str, doc: dict[str, Any], references: list[tuple[str, dict[str, Any]]]
) -> str | None:
    """The patient id whose compartment holds the resource, or None (shared or private)."""
    if resource_type == "Patient":
        return logical_id
    if resource_type in cdef.SHARED_TYPES:
        return None
    c = cdef.collect(resource_type, doc, references, store.base_urls)
    if c.by_definition:
        return c.by_definition[0] if len(c.by_definition) == 1 else None
    for ident in c.identifiers_by_definition:
        holder = _holder(uow, store, ident)
        if holder is not None:
            return holder
    named = set(c.patients)
    named |= {h for h in (_holder(uow, store, i) for i in c.identifiers) if h is not None}
    for rtype, rid in c.links:
        if (rtype, rid) == (resource_type, logical_id):
            continue
        current = repository.current(uow, rtype, rid)
        if current is not None and current.compartment is not None:
            named.add(current.compartment)
    return named.pop() if len(named) == 1 else None
