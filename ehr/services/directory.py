"""The directory of facilities (Organizations) as a patient looks it up in the health book.

Organizations are directory data (in no patient's compartment), readable by every signed-in
principal. Patients search them to choose whom to share their record with, so this module only
ever builds its own queries: an Organization search by name or by the 5-digit facility code
(mã cơ sở KCB), never a parameter a patient typed, so no chained or `_has` parameter can reach
into patient records through it. Results are few and carry names and codes only.

Names are indexed as keyed prefixes of the whole name (privacy design of string search), so a
word in the middle ("Bạch Mai" in "Bệnh viện Bạch Mai") is found by a bounded scan of the
directory when the prefix search finds too little.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ehr.crypto.blind import fold_text
from ehr.fhir import jsonio
from ehr.fhir.outcomes import FhirError
from ehr.services import policy, resources, search
from ehr.services.context import AccessContext
from ehr.store.runtime import Store

MAX_RESULTS = 20
SCAN_PAGE = 500
SCAN_LIMIT = 5000  # organizations looked at by one name search, at most
MAX_QUERY = 100


@dataclass(frozen=True)
class Facility:
    id: str
    name: str
    code: str  # facility code (mã cơ sở KCB), "" when unknown
    address: str


def facility_of(store: Store, doc: dict[str, Any]) -> Facility:
    code = next((i.get("value") for i in doc.get("identifier") or () if i.get("system") == store.systems.facility), "")
    address = (doc.get("address") or [{}])[0]
    place = address.get("text") or ", ".join(p for p in (address.get("city"), address.get("state")) if p)
    return Facility(str(doc.get("id")), str(doc.get("name") or ""), str(code or ""), str(place or ""))


def _find(store: Store, ctx: AccessContext, params: list[tuple[str, str]], active_only: bool = True) -> tuple[list[dict[str, Any]], str | None]:
    page = search.search(store, ctx, "Organization", params)
    docs = [jsonio.loads_stored(v.body or b"{}") for v, mode in page.entries if mode == "match"]
    return [d for d in docs if not active_only or d.get("active") is not False], page.next_token


def search_organizations(store: Store, ctx: AccessContext, text: str, limit: int = MAX_RESULTS) -> list[Facility]:
    """Registered facilities (with a facility code) whose name contains every word typed (accents
    and case ignored), or whose facility code is the 5 digits typed; at most `limit`, by name."""
    policy.authorize(ctx, "search", "Organization")
    typed = " ".join((text or "").split())[:MAX_QUERY]
    if len(typed) < 2:
        return []
    if re.fullmatch(r"\d{5}", typed):
        found, _ = _find(store, ctx, [("identifier", f"{store.systems.facility}|{typed}"), ("_count", str(limit))])
        return [facility_of(store, d) for d in found][:limit]
    words = fold_text(typed).split()
    seen: dict[str, dict[str, Any]] = {}
    found, _ = _find(store, ctx, [("name", typed), ("_count", str(limit))])
    for doc in found:
        seen[str(doc.get("id"))] = doc
    token: str | None = None
    scanned = 0
    while len(seen) < limit and scanned < SCAN_LIMIT:
        page, token = _find(store, ctx, [("_page", token)] if token else [("_count", str(SCAN_PAGE))])
        scanned += SCAN_PAGE
        for doc in page:
            haystack = fold_text(" ".join([str(doc.get("name") or ""), *[str(a) for a in doc.get("alias") or ()]]))
            if all(w in haystack for w in words):
                seen.setdefault(str(doc.get("id")), doc)
        if token is None:
            break
    # Only registered facilities (a facility code, set by an operator) are offered for sharing: an
    # Organization a facility added itself cannot pose as another facility here.
    listed = (f for f in (facility_of(store, d) for d in seen.values()) if f.code)
    return sorted(listed, key=lambda f: fold_text(f.name))[:limit]


def get(store: Store, ctx: AccessContext, organization_id: str) -> Facility | None:
    """The facility with this id, or None when there is none (or it is not directory data)."""
    try:
        version = resources.read(store, ctx, "Organization", organization_id)
    except FhirError:
        return None
    if version.compartment is not None:
        return None
    return facility_of(store, jsonio.loads_stored(version.body or b"{}"))


def names(store: Store, ctx: AccessContext, organization_ids: set[str] | list[str]) -> dict[str, str]:
    """{id: name} of these Organizations (unknown ids are left out)."""
    ids = sorted({i for i in organization_ids if i})
    out: dict[str, str] = {}
    for start in range(0, len(ids), 100):
        chunk = ids[start : start + 100]
        found, _ = _find(store, ctx, [("_id", ",".join(chunk)), ("_count", str(len(chunk)))], active_only=False)
        out.update({str(d.get("id")): str(d.get("name") or "") for d in found})
    return out
