"""Conditions of conditional interactions (`If-None-Exist`, later conditional update/delete).

A condition is a search query, evaluated strictly (an unknown parameter is refused with 400,
since ignoring a criterion would widen the match). Before searching, the writer locks a key per
criterion, so two writers testing the same identifier are serialised whatever spelling of the
condition they use (`system|value` or `value`).
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from ehr.crypto.blind import normalize_identifier
from ehr.fhir import query as q
from ehr.fhir.outcomes import FhirError, bad_request
from ehr.services import search
from ehr.store.runtime import Store
from ehr.store.uow import UnitOfWork


def parse_conditions(text: str, where: str = "If-None-Exist") -> list[tuple[str, str]]:
    if not text or not text.strip():
        raise bad_request("the condition is empty", where)
    try:
        pairs = parse_qsl(text.lstrip("?"), keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise bad_request("the condition is not a valid query string", where) from None
    try:
        parsed = q.parse(pairs)
    except FhirError as exc:
        raise search.parameter_error(exc, where) from None
    if not parsed.clauses or parsed.includes or parsed.sort:
        raise bad_request("the condition must consist of search parameters", where)
    return pairs


def lock_keys(store: Store, resource_type: str, pairs: list[tuple[str, str]]) -> list[bytes]:
    keys = []
    for name, value in pairs:
        if name.split(":")[0] == "identifier":
            for alternative in q.split_escaped(value, ","):
                code = q.unescape(q.split_escaped(alternative, "|")[-1])
                keys.append(store.blind.lock_key(resource_type, "identifier", normalize_identifier(code)))
        else:
            keys.append(store.blind.lock_key(resource_type, name, value))
    return keys


def find(uow: UnitOfWork, store: Store, resource_type: str, pairs: list[tuple[str, str]], limit: int, where: str = "If-None-Exist") -> list[str]:
    try:
        return search.find_ids(uow, store, resource_type, pairs, limit)
    except FhirError as exc:
        raise search.parameter_error(exc, where) from None
