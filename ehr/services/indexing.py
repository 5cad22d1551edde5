"""Turn a validated resource into its search-index rows (blind tokens for identifying values)."""

from __future__ import annotations

from typing import Any, Iterable

from ehr.crypto.blind import normalize_identifier
from ehr.fhir import extract
from ehr.store.index import RefRow, TokenRow
from ehr.store.runtime import Store


def identifier_purpose(resource_type: str) -> str:
    return f"{resource_type}.identifier"


def identifier_token(store: Store, resource_type: str, value: str) -> bytes:
    return store.blind.token(identifier_purpose(resource_type), normalize_identifier(value))


def rows_for(
    store: Store, resource_type: str, doc: dict[str, Any], local_refs: Iterable[tuple[str, str]]
) -> tuple[list[TokenRow], list[RefRow]]:
    tokens = [
        TokenRow("identifier", system, None, identifier_token(store, resource_type, value) if value else None)
        for system, value in extract.identifiers(doc)
        if system or value
    ]
    refs = [RefRow("_ref", t, i) for t, i in sorted(set(local_refs))]
    return tokens, refs
