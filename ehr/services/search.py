"""Type-level search (first cut): `_id` and `identifier`, paged by an opaque token.

Unknown parameters are ignored and reported as a warning (lenient, the FHIR default), or refused
with 400 under `Prefer: handling=strict`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ehr.fhir.outcomes import Issue, bad_request
from ehr.services import matching
from ehr.services.context import AccessContext
from ehr.services.policy import authorize
from ehr.services.resources import check_type
from ehr.store import index, repository
from ehr.store.keys import CompartmentErased
from ehr.store.repository import StoredVersion
from ehr.store.runtime import CursorError, Store

RESULT_PARAMS = {"_count", "_format", "_pretty", "_page"}
MAX_COUNT = 1000
DEFAULT_COUNT = 50


@dataclass
class SearchPage:
    entries: list[StoredVersion]
    next_token: str | None
    total: int | None
    issues: list[Issue] = field(default_factory=list)


def parse_count(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_COUNT
    if not raw.isdigit():
        raise bad_request("_count must be a non-negative integer", "_count")
    return min(int(raw), MAX_COUNT)


def search(
    store: Store,
    ctx: AccessContext,
    resource_type: str,
    params: list[tuple[str, str]],
    strict: bool = False,
) -> SearchPage:
    check_type(resource_type)
    authorize(ctx, "search", resource_type)
    issues: list[Issue] = []
    query = []
    count_raw = page = None
    for name, value in params:
        if name == "_count":
            count_raw = value
        elif name == "_page":
            page = value
        elif name in matching.SUPPORTED:
            query.append((name, value))
        elif name not in RESULT_PARAMS:
            if strict:
                raise bad_request(f"unknown search parameter '{name[:64]}'", name[:64])
            issues.append(Issue("not-supported", f"unknown search parameter '{name[:64]}' was ignored", severity="warning"))
    count = parse_count(count_raw)
    after = None
    if page:
        # A next link carries only the token: the query and page size travel inside it, encrypted.
        try:
            payload = store.open_cursor(page)
            if payload.get("t") != resource_type:
                raise CursorError("another resource type")
            query = [(str(n), str(v)) for n, v in payload["q"]]  # type: ignore[union-attr]
            count = int(payload["n"])  # type: ignore[call-overload]
            after = str(payload["after"])
        except (CursorError, KeyError, TypeError, ValueError):
            raise bad_request("the paging token is not valid", "_page") from None
    criteria = matching.parse_conditions("&".join(f"{n}={v}" for n, v in query)) if query else []
    with store.reading() as uow:
        if criteria:
            ids = matching.find(uow, store, resource_type, criteria, limit=MAX_COUNT * 10)
            ids = [i for i in ids if after is None or i > after][: count + 1]
        else:
            ids = index.live_of_type(uow, resource_type, None, after, count + 1)
        more = len(ids) > count
        entries = []
        for logical_id in ids[:count]:
            try:
                found = repository.read_current(uow, store.keys, resource_type, logical_id)
            except CompartmentErased:
                continue
            if found is not None and not found.deleted:
                entries.append(found)
    token = store.sign_cursor({"t": resource_type, "q": query, "n": count, "after": ids[count - 1]}) if more and count else None
    return SearchPage(entries, token, None, issues)
