"""Conditions of conditional interactions (If-None-Exist) evaluated on the search index.

Supported parameters: `_id` and `identifier` (token: `system|value`, `|value`, `value`,
`system|`). A condition with any other parameter is refused with 400, because silently ignoring a
criterion would widen the match. Each criterion also yields a lock key, so two writers testing the
same identifier are serialised whatever spelling of the condition they use.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl

from ehr.crypto.blind import normalize_identifier
from ehr.fhir.outcomes import bad_request
from ehr.fhir.resources import is_valid_id
from ehr.services.indexing import identifier_token
from ehr.store import index
from ehr.store.runtime import Store
from ehr.store.uow import UnitOfWork

SUPPORTED = ("_id", "identifier")


@dataclass(frozen=True)
class Criterion:
    param: str
    system: str | None  # None: any system; "" : no system
    value: str | None


def parse_conditions(query: str) -> list[Criterion]:
    if not query or not query.strip():
        raise bad_request("the condition is empty", "If-None-Exist")
    try:
        pairs = parse_qsl(query.lstrip("?"), keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise bad_request("the condition is not a valid query string", "If-None-Exist") from None
    criteria = []
    for name, raw in pairs:
        if name not in SUPPORTED:
            raise bad_request(f"parameter '{name}' is not supported in conditions (supported: _id, identifier)", "If-None-Exist")
        if "," in raw:
            raise bad_request("OR lists are not supported in conditions", "If-None-Exist")
        if name == "_id":
            if not is_valid_id(raw):
                raise bad_request("_id is not a valid id", "If-None-Exist")
            criteria.append(Criterion("_id", None, raw))
            continue
        if "|" in raw:
            system, value = raw.split("|", 1)
        else:
            system, value = None, raw
        if not value and not system:
            raise bad_request("identifier needs a value or a system", "If-None-Exist")
        criteria.append(Criterion("identifier", system, value or None))
    return criteria


def lock_keys(store: Store, resource_type: str, criteria: list[Criterion]) -> list[bytes]:
    keys = []
    for c in criteria:
        if c.param == "identifier" and c.value:
            keys.append(store.blind.lock_key(resource_type, "identifier", normalize_identifier(c.value)))
        else:
            keys.append(store.blind.lock_key(resource_type, c.param, c.system or "", c.value or ""))
    return keys


def find(uow: UnitOfWork, store: Store, resource_type: str, criteria: list[Criterion], limit: int) -> list[str]:
    """Ids of live resources matching every criterion (AND), at most `limit`."""
    ids: set[str] | None = None
    for c in criteria:
        if c.param == "_id":
            found = set(index.live_of_type(uow, resource_type, [c.value or ""], None, limit))
        else:
            hash_ = identifier_token(store, resource_type, c.value) if c.value else None
            found = set(index.match_tokens(uow, resource_type, "identifier", c.system, hash_, None, 1000))
        ids = found if ids is None else ids & found
        if not ids:
            return []
    live = index.live_of_type(uow, resource_type, sorted(ids or ()), None, limit)
    return live
